# nixos-eval case (--mode vm): node `monitor` of vm-tests/two-hosts.nix.
{
  imports = [
    ../default.nix
    ../../vm-tests/nodes/monitor.nix
  ];
}
