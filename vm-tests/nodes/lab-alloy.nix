# vm-tests/alerts-alloy.nix: the one-VM lab of lab.nix with Grafana Alloy shipping the
# services' logs instead of Promtail.
{
  imports = [./lab.nix];
  services.alertlab.observability.logShipper = "alloy";
}
