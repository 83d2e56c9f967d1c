# nixos-eval case: the shop and the observability stack on one host, Promtail shipping the logs
# (the default), with the log rotation and Loki retention set.
{
  imports = [
    ../shop.nix
    ../observability.nix
  ];
  services.alertlab = {
    shop = {
      enable = true;
      grafanaReadOnly.passwordFile = "/run/secrets/grafana-ro-password";
      logRotation = {
        size = "512KiB";
        keep = 2;
      };
    };
    observability = {
      enable = true;
      loki.retention = "72h";
      grafana = {
        adminPasswordFile = "/run/secrets/grafana-admin-password";
        secretKeyFile = "/run/secrets/grafana-secret-key";
      };
    };
  };
}
