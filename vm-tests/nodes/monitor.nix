# vm-tests/two-hosts.nix, node `monitor`: Prometheus, Loki, Grafana, Mailpit and the webhook
# sink, all pointed at the shop on `shop`.
{
  config,
  pkgs,
  ...
}: let
  secrets = "/etc/alertlab-test";
in {
  imports = [./test-secrets.nix];

  services.alertlab = {
    observability = {
      enable = true;
      profile = "fast";
      shopHost = "shop";
      # Promtail on `shop` pushes here.
      loki.listenAddress = "0.0.0.0";
      grafana = {
        adminPasswordFile = "${secrets}/grafana-admin-password";
        secretKeyFile = "${secrets}/grafana-secret-key";
        postgresPasswordFile = "${secrets}/grafana-ro-password";
      };
    };
    # Grafana's webhook contact point posts to 127.0.0.1:9095, on this host.
    shop.webhookSink.enable = true;
  };

  networking.firewall.allowedTCPPorts = [3100];

  virtualisation = {
    memorySize = 3072;
    cores = 2;
  };

  # labctl (in the shop's package; the shop itself is not enabled here), curl.
  environment.systemPackages = [config.services.alertlab.shop.package pkgs.curl];
}
