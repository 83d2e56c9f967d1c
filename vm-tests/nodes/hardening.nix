# vm-tests/hardening.nix: the one-VM lab, with the services listening on every address, so a
# client that is not on loopback can reach their fault API (and must be refused).
{
  imports = [./lab.nix];
  services.alertlab.shop.listenAddress = "0.0.0.0";
}
