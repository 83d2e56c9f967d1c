# nixos-eval case (--mode vm): node `monitor` of vm-tests/two-hosts.nix, with nixosModules.default.
{
  imports = [
    (import ./flake.nix).default
    ../../vm-tests/nodes/monitor.nix
  ];
}
