# The lab's scenario control endpoint (`labctl scenario serve`): the failure scenarios,
# started and stopped over HTTP by a labctl elsewhere (`--scenario-url`) that presents the
# token; the host of the `nix run` VM uses it. The scenarios run here, in a unit of their own
# whose user may start and stop the shop's units and nothing else (a polkit rule: the
# service-down scenario stops and starts the inventory service) and which reads only the
# secrets it uses, as systemd credentials.
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkOption types;
  data = import ./lib;
  cfg = config.services.alertlab.lab.scenarioControl;
  shop = config.services.alertlab.shop;
  grafana = config.services.alertlab.observability.grafana;
  user = "alertlab-scenarios";
  url = port: "http://127.0.0.1:${toString port}";
  shopUnits = map (service: "${service.binary}.service") data.services;
  # systemd.package defaults to pkgs.systemd; systemctl only talks to the running manager.
  systemctl = verb: "${pkgs.systemd}/bin/systemctl --no-ask-password ${verb} shop-inventory.service";
  credentials =
    ["scenario-token:${cfg.tokenFile}"]
    ++ lib.optional (shop.faults.tokenFile != null) "fault-token:${shop.faults.tokenFile}"
    ++ lib.optional (grafana.adminPasswordFile != null) "grafana-password:${grafana.adminPasswordFile}";
in {
  options.services.alertlab.lab.scenarioControl = {
    enable = lib.mkEnableOption "`labctl scenario serve`: the failure scenarios over HTTP, for a labctl on another host with the token";

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "0.0.0.0";
      description = "Address the scenario control endpoint listens on.";
    };

    port = mkOption {
      type = types.port;
      default = data.ports.scenarioControl;
      description = "Port of the scenario control endpoint.";
    };

    tokenFile = mkOption {
      type = types.nullOr types.externalPath;
      default = null;
      example = "/run/secrets/alertlab-scenario-token";
      description = ''
        File with the bearer token clients must present (at least 16 characters). The lab
        profile generates one under /var/lib/alertlab-secrets unless `generateSecrets` is off.
      '';
    };

    allowedHosts = mkOption {
      type = types.listOf types.str;
      default = [];
      example = ["lab.example.internal"];
      description = ''
        Host names the endpoint accepts in the `Host` header besides localhost, loopback
        addresses and `listenAddress`; a request naming any other host is refused (DNS
        rebinding).
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the endpoint's port in the firewall.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = shop.enable;
        message = "services.alertlab.lab.scenarioControl runs the shop's scenarios: enable services.alertlab.shop (or the lab profile) too.";
      }
      {
        assertion = cfg.tokenFile != null;
        message = "services.alertlab.lab.scenarioControl.tokenFile must be set (the lab profile generates one unless generateSecrets is off).";
      }
    ];

    users.users.${user} = {
      isSystemUser = true;
      group = user;
    };
    users.groups.${user} = {};

    # systemd passes the unit and the verb to polkit (systemd >= 226); this user may start
    # and stop the shop's units and nothing else.
    security.polkit = {
      enable = true;
      extraConfig = ''
        polkit.addRule(function (action, subject) {
          if (action.id == "org.freedesktop.systemd1.manage-units" &&
              subject.user == "${user}" &&
              ${builtins.toJSON shopUnits}.indexOf(action.lookup("unit")) >= 0 &&
              ["start", "stop"].indexOf(action.lookup("verb")) >= 0) {
            return polkit.Result.YES;
          }
        });
      '';
    };

    systemd.services.alertlab-scenarios = {
      description = "alertlab scenario control (labctl scenario serve)";
      wantedBy = ["multi-user.target"];
      after = ["network.target"];
      # `sh` for the stop and start commands.
      path = [pkgs.bash];
      serviceConfig =
        # The shop units' hardening (lib/unit-hardening.nix) but for what systemctl needs:
        # /proc whole (it looks at PID 1 to tell whether it runs in a chroot, and refuses to
        # act when it cannot), its own user id on the system bus (no user namespace), IP
        # from wherever the controlling labctl is (the `nix run` host comes through QEMU's
        # gateway), and the @resources calls; AF_UNIX reaches systemd over the bus.
        removeAttrs data.unitHardening.service ["ProcSubset" "ProtectProc" "PrivateUsers" "IPAddressDeny"]
        // {
          SystemCallFilter = ["@system-service" "~@privileged"];
        }
        # MemoryMax and TasksMax, with the reasons: nixos-modules/lib/unit-limits.json.
        // data.unitLimits.alertlab-scenarios.serviceConfig
        // {
          User = user;
          Group = user;
          ExecStart = lib.escapeShellArgs (
            [
              "${shop.package}/bin/labctl"
              "--api-url"
              (url shop.ports.api)
              "--frontend-url"
              (url shop.ports.frontend)
              "--payment-url"
              (url shop.ports.payment)
              "--inventory-url"
              (url shop.ports.inventory)
              "--grafana-url"
              (url data.ports.grafana)
              "--traffic-url"
              (url data.ports.trafficControl)
              "--scenario-token-file"
              "%d/scenario-token"
            ]
            ++ lib.optionals (shop.faults.tokenFile != null) ["--fault-token-file" "%d/fault-token"]
            ++ lib.optionals (grafana.adminPasswordFile != null) ["--grafana-password-file" "%d/grafana-password"]
            ++ [
              "scenario"
              "serve"
              "--listen"
              "${cfg.listenAddress}:${toString cfg.port}"
              "--state-dir"
              "/run/alertlab-scenarios"
              "--stop-command"
              (systemctl "stop")
              "--start-command"
              (systemctl "start")
            ]
            ++ lib.optional (grafana.adminPasswordFile == null) "--no-annotate"
            ++ lib.concatMap (host: ["--allowed-host" host]) cfg.allowedHosts
          );
          LoadCredential = credentials;
          RuntimeDirectory = "alertlab-scenarios";
          RuntimeDirectoryMode = "0700";
          UMask = "0077";
          Restart = "on-failure";
          RestartSec = 2;
        };
    };

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [cfg.port];
  };
}
