# The lab VM of `nix run` (apps.default): the lab profile in the demo timing with traffic on.
# Only its `virtualisation.vmVariant` runs (the flake builds `config.system.build.vm`): Grafana,
# Prometheus, Loki and the four services listen on every address in the VM, the VM's firewall
# admits them, and QEMU forwards them from 127.0.0.1 on the host (lib/demo-vm.nix).
{config, ...}: let
  data = import ./lib;
  demo = import ./lib/demo-vm.nix;
  secret = text: {
    inherit text;
    mode = "0400";
  };
in {
  networking.hostName = demo.hostName;
  system.stateVersion = "26.05";

  # The demo profile and the traffic generator are the lab profile's defaults.
  services.alertlab.lab.enable = true;

  virtualisation.vmVariant = {
    virtualisation = {
      inherit (demo) memorySize cores;
      diskSize = 8192;
      # No window: the app sends the console to a log file and powers the VM off on Ctrl-C.
      graphics = false;
      forwardPorts =
        map (port: {
          from = "host";
          host.address = "127.0.0.1";
          host.port = port;
          guest.port = port;
        })
        demo.forwardedPorts;
    };

    services.alertlab = {
      shop = {
        listenAddress = "0.0.0.0";
        openFirewall = true;
        # Forwarded requests reach the services from QEMU's gateway (10.0.2.2), not from
        # loopback: labctl on the host presents this token.
        faults.tokenFile = "${demo.secretsDir}/fault-token";
      };
      observability = {
        prometheus.listenAddress = "0.0.0.0";
        loki.listenAddress = "0.0.0.0";
        grafana = {
          listenAddress = "0.0.0.0";
          openFirewall = true;
          adminPasswordFile = "${demo.secretsDir}/grafana-admin-password";
        };
      };
    };
    networking.firewall.allowedTCPPorts = [data.ports.prometheus data.ports.loki];

    # The published demo values (lib/demo-vm.nix); the other secrets are generated at boot.
    environment.etc = {
      "alertlab-demo/grafana-admin-password" = secret demo.grafanaAdminPassword;
      "alertlab-demo/fault-token" = secret demo.faultToken;
    };

    environment.systemPackages = [config.services.alertlab.shop.package];
  };
}
