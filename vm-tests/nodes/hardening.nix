# vm-tests/hardening.nix: the one-VM lab, with the services listening on every address, so a
# client that is not on loopback can reach their fault API (and must be refused), and with
# the scenario control endpoint of the `nix run` VM, so its unit and token are checked too.
{
  imports = [./lab.nix];
  services.alertlab = {
    shop.listenAddress = "0.0.0.0";
    lab.scenarioControl.enable = true;
  };
}
