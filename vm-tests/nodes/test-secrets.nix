# Fixed secrets for vm-tests/two-hosts.nix, the same on both nodes: the shop's read-only
# PostgreSQL role and Grafana must share its password, and labctl on the monitor needs the
# shop's fault token. They are test values in the Nix store (copied to /etc, root-only);
# the one-host tests use the lab profile's secrets generated at boot instead.
let
  secret = text: {
    inherit text;
    mode = "0400";
  };
in {
  environment.etc = {
    "alertlab-test/grafana-admin-password" = secret "two-hosts-admin";
    "alertlab-test/grafana-secret-key" = secret "two-hosts-secret-key-0123456789abcdef";
    "alertlab-test/grafana-ro-password" = secret "two-hosts-read-only";
    "alertlab-test/fault-token" = secret "two-hosts-fault-token";
  };
}
