# Every alert fires, notifies and resolves: the whole lab on one VM (4 GiB, 2 cores) in the
# fast profile. alerts.py boots it, checks Grafana's data sources and rules, runs
# `labctl verify --report` (its report ends up in $out/report.json) and checks that Loki has
# every log line the services wrote. About 25-35 minutes with KVM (an estimate).
{
  pkgs,
  self,
}:
pkgs.testers.runNixOSTest {
  name = "alertlab-alerts";
  nodes.machine.imports = [self.nixosModules.default ./nodes/lab.nix];
  # labctl verify bounds itself well below this (about 25 minutes at worst).
  globalTimeout = 3600;
  testScript = (import ./scripts.nix).alerts;
}
