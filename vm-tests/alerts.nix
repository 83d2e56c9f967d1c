# Every alert fires, notifies and resolves: the whole lab on one VM (4 GiB, 2 cores) in the
# fast profile, Promtail shipping the logs. alerts.py boots it, checks Grafana's data sources
# and rules, rotates every service's log once, runs `labctl verify --report` (its report ends
# up in $out/report.json), writes each unit's memory peak and limit (`labctl audit memory`) to
# $out/memory.json and checks that Loki has every log line the services wrote, rotated files
# included. About 25-35 minutes with KVM (an estimate).
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
