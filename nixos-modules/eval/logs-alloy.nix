# nixos-eval case: the shop and the observability stack on one host, Grafana Alloy shipping the
# logs (services.alloy with its configuration in /etc/alloy/config.alloy).
{
  imports = [
    ../shop.nix
    ../observability.nix
  ];
  services.alertlab = {
    shop = {
      enable = true;
      grafanaReadOnly.passwordFile = "/run/secrets/grafana-ro-password";
    };
    observability = {
      enable = true;
      logShipper = "alloy";
      grafana = {
        adminPasswordFile = "/run/secrets/grafana-admin-password";
        secretKeyFile = "/run/secrets/grafana-secret-key";
      };
    };
  };
}
