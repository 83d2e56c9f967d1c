# nixos-eval case (--mode vm): the node of vm-tests/alerts.nix (the flake adds nixosModules.default).
{
  imports = [
    ../default.nix
    ../../vm-tests/nodes/lab.nix
  ];
}
