# The lab's exposure: systemd's security analysis of our units, Grafana's read-only
# PostgreSQL role, secrets outside the Nix store, the fault API's access check (hardening.py).
{
  pkgs,
  self,
}:
pkgs.testers.runNixOSTest {
  name = "alertlab-hardening";
  nodes.machine.imports = [self.nixosModules.default ./nodes/hardening.nix];
  globalTimeout = 1800;
  testScript = {nodes, ...}:
    (import ./scripts.nix).hardening {
      ownAddress = nodes.machine.networking.primaryIPAddress;
    };
}
