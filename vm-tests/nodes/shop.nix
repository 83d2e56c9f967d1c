# vm-tests/two-hosts.nix, node `shop`: the four services, PostgreSQL, the traffic generator
# and Promtail, which ships the log files to Loki on `monitor`.
{
  config,
  pkgs,
  ...
}: let
  secrets = "/etc/alertlab-test";
in {
  imports = [./test-secrets.nix];

  services.alertlab = {
    shop = {
      enable = true;
      # Scraped by Prometheus on `monitor`.
      listenAddress = "0.0.0.0";
      openFirewall = true;
      faults = {
        enable = true;
        tokenFile = "${secrets}/fault-token";
      };
      grafanaReadOnly = {
        passwordFile = "${secrets}/grafana-ro-password";
        # The test network (vlan 1).
        allowedNetworks = ["192.168.1.0/24"];
      };
      traffic.enable = true;
    };
    observability.promtail = {
      enable = true;
      lokiUrl = "http://monitor:3100";
    };
  };

  virtualisation = {
    memorySize = 2048;
    cores = 2;
  };

  environment.systemPackages = [config.services.alertlab.shop.package pkgs.curl];
}
