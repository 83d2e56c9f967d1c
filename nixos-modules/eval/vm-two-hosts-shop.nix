# nixos-eval case (--mode vm): node `shop` of vm-tests/two-hosts.nix, with nixosModules.default.
{
  imports = [
    (import ./flake.nix).default
    ../../vm-tests/nodes/shop.nix
  ];
}
