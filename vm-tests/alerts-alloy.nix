# The lab with Grafana Alloy as its log shipper (services.alertlab.observability.logShipper =
# "alloy"), one VM (4 GiB, 2 cores) in the fast profile: alerts.py as in alerts.nix, with
# labctl verify's phase 1, which runs the scenarios of every Loki rule. Every Loki rule fires,
# notifies and resolves on lines Alloy shipped, every service's log rotates once while Alloy
# tails it, and Loki holds exactly the lines the services wrote. $out/report.json and
# $out/memory.json as in alerts.nix. About 15-20 minutes with KVM (an estimate).
{
  pkgs,
  self,
}:
pkgs.testers.runNixOSTest {
  name = "alertlab-alerts-alloy";
  nodes.machine.imports = [self.nixosModules.default ./nodes/lab-alloy.nix];
  globalTimeout = 3600;
  testScript = (import ./scripts.nix).alerts-alloy;
}
