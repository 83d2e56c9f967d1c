# nixos-eval case (--mode vm): node `shop` of vm-tests/two-hosts.nix.
{
  imports = [
    ../default.nix
    ../../vm-tests/nodes/shop.nix
  ];
}
