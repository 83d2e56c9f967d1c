# The VM of `nix run .#alloy` (apps.alloy): the `nix run` VM of demo-vm.nix with Grafana Alloy
# shipping the shop's logs instead of Promtail. Everything else, the forwarded ports and the
# published demo values included, is the same.
{
  imports = [./demo-vm.nix];
  services.alertlab.observability.logShipper = "alloy";
}
