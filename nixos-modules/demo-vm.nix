# The lab VM of `nix run` (apps.default): the lab profile in the demo timing with traffic on,
# and the scenario control endpoint the host's labctl starts scenarios through. Only its
# `virtualisation.vmVariant` runs (the flake builds `config.system.build.vm`). Grafana,
# Prometheus, Loki, the API, the frontend and the scenario control endpoint listen on every
# address in the VM and its firewall admits them; the app (demo-vm-app.nix) has QEMU forward
# them from 127.0.0.1 on the host (lib/demo-vm.nix). Everything else stays inside.
{config, ...}: let
  demo = import ./lib/demo-vm.nix;
  secret = text: {
    inherit text;
    mode = "0400";
  };
in {
  networking.hostName = demo.hostName;
  system.stateVersion = "26.05";

  # The demo profile and the traffic generator are the lab profile's defaults.
  services.alertlab.lab = {
    enable = true;
    scenarioControl = {
      enable = true;
      # The published demo token (lib/demo-vm.nix).
      tokenFile = "${demo.secretsDir}/scenario-token";
    };
  };

  # The published demo values (lib/demo-vm.nix); the other secrets are generated at boot.
  environment.etc = {
    "alertlab-demo/grafana-admin-password" = secret demo.grafanaAdminPassword;
    "alertlab-demo/scenario-token" = secret demo.scenarioToken;
  };

  virtualisation.vmVariant = {
    virtualisation = {
      inherit (demo) memorySize cores;
      diskSize = 8192;
      # No window: the app sends the console to a log file and powers the VM off on Ctrl-C.
      graphics = false;
    };

    services.alertlab = {
      shop.listenAddress = "0.0.0.0";
      lab.scenarioControl.listenAddress = "0.0.0.0";
      observability = {
        prometheus.listenAddress = "0.0.0.0";
        loki.listenAddress = "0.0.0.0";
        grafana = {
          listenAddress = "0.0.0.0";
          adminPasswordFile = "${demo.secretsDir}/grafana-admin-password";
        };
      };
    };
    # The forwarded ports only (the payment and inventory services listen too, unreachable).
    networking.firewall.allowedTCPPorts = map (forward: forward.port) demo.forwarded;

    environment.systemPackages = [config.services.alertlab.shop.package];
  };
}
