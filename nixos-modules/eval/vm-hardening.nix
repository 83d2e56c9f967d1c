# nixos-eval case (--mode vm): the node of vm-tests/hardening.nix, with nixosModules.default.
{
  imports = [
    (import ./flake.nix).default
    ../../vm-tests/nodes/hardening.nix
  ];
}
