# nixos-eval case (--mode vm): the node of vm-tests/hardening.nix.
{
  imports = [
    ../default.nix
    ../../vm-tests/nodes/hardening.nix
  ];
}
