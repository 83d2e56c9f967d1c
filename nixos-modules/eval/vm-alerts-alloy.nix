# nixos-eval case (--mode vm): the node of vm-tests/alerts-alloy.nix, with nixosModules.default.
{
  imports = [
    (import ./flake.nix).default
    ../../vm-tests/nodes/lab-alloy.nix
  ];
}
