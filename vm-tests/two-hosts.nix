# The lab split over two VMs on the test network: `shop` (services, PostgreSQL, Promtail) and
# `monitor` (Prometheus, Loki, Grafana, Mailpit, webhook sink). two-hosts.py proves the
# scrape, the log push and the SQL across hosts and that a rule of each data source fires.
{
  pkgs,
  self,
}:
pkgs.testers.runNixOSTest {
  name = "alertlab-two-hosts";
  nodes.shop.imports = [self.nixosModules.default ./nodes/shop.nix];
  nodes.monitor.imports = [self.nixosModules.default ./nodes/monitor.nix];
  globalTimeout = 1800;
  testScript = (import ./scripts.nix).two-hosts;
}
