# The observability stack of the lab: Prometheus scraping the shop, Loki with Promtail
# shipping the shop's log files, Grafana with the provisioned data sources, dashboards
# and alerting of ../grafana, and Mailpit as the SMTP sink.
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkOption types;
  data = import ./lib;
  cfg = config.services.alertlab.observability;

  # The shop module's settings when it is imported, the seed's defaults otherwise.
  shop = lib.attrByPath ["services" "alertlab" "shop"] {} config;
  shopEnabled = lib.attrByPath ["enable"] false shop;
  readOnlyRoleUnit = lib.optional (shopEnabled && shop.grafanaReadOnly.enable) "alertlab-grafana-ro.service";
  shopPorts = lib.attrByPath ["ports"] {} shop;
  shopServices = map (service: service // {port = lib.attrByPath [service.name] service.port shopPorts;}) data.services;
  logDir = lib.attrByPath ["logDir"] "/var/log/alertlab" shop;

  profile = data.profiles.${cfg.profile};
  lokiUnit = lib.optional cfg.enable "loki.service";
  loopback = port: "127.0.0.1:${toString port}";
  readJSON = file: builtins.fromJSON (builtins.readFile file);

  # Secrets reach Grafana as systemd credentials of grafana.service, read by Grafana's
  # file provider: the files stay outside the store and root-only.
  credential = name: "$__file{/run/credentials/grafana.service/${name}}";

  datasources = let
    file = readJSON ../grafana/datasources.json;
  in
    file
    // {
      datasources = map (datasource:
        if datasource.uid == "postgres"
        then
          datasource
          // {
            url = "${cfg.shopHost}:${toString data.ports.postgresql}";
            secureJsonData.password = credential "postgres-password";
          }
        else datasource)
      file.datasources;
    };

  promtailConfig = pkgs.writeText "alertlab-promtail.json" (builtins.toJSON (data.promtailConfig {
    services = shopServices;
    inherit logDir;
    inherit (cfg.promtail) lokiUrl;
    positionsFile = "/var/lib/alertlab-promtail/positions.yaml";
    httpListenPort = data.ports.promtail;
  }));

  secretPath = types.nullOr types.externalPath;
in {
  options.services.alertlab.observability = {
    enable = lib.mkEnableOption "the alertlab observability stack (Prometheus, Loki, Promtail, Grafana, Mailpit)";

    profile = mkOption {
      type = types.enum ["demo" "fast"];
      default = "demo";
      description = ''
        Timing profile of the alert rules and scrapes: `demo` (30 s rule evaluation and
        pending periods, 15 s scrapes) or `fast` (10 s evaluation, short pending periods,
        5 s scrapes; for tests).
      '';
    };

    shopHost = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "shop.example.internal";
      description = ''
        Host of the shop: its four services (Prometheus' scrape targets) and its PostgreSQL
        (Grafana's PostgreSQL data source). On another host, the shop must listen there
        (`services.alertlab.shop.listenAddress`, `openFirewall`) and admit this host's Grafana
        (`services.alertlab.shop.grafanaReadOnly.allowedNetworks`).
      '';
    };

    prometheus = {
      retentionTime = mkOption {
        type = types.str;
        default = "7d";
        description = "How long Prometheus keeps samples.";
      };
      listenAddress = mkOption {
        type = types.str;
        default = "127.0.0.1";
        example = "0.0.0.0";
        description = "Address Prometheus listens on (port ${toString data.ports.prometheus}; open it in the firewall yourself). It scrapes itself on 127.0.0.1, so keep loopback in it (127.0.0.1 or 0.0.0.0).";
      };
    };

    loki.listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "0.0.0.0";
      description = ''
        Address Loki's HTTP API listens on (port ${toString data.ports.loki}), e.g. for a Promtail
        on the shop's host (open the port in the firewall yourself). Its gRPC port stays on 127.0.0.1.
      '';
    };

    promtail = {
      enable = mkOption {
        type = types.bool;
        # It tails the shop's log files: on a host without the shop there is nothing to ship.
        default = cfg.enable && shopEnabled;
        defaultText = lib.literalExpression "config.services.alertlab.observability.enable && config.services.alertlab.shop.enable";
        description = ''
          Run Promtail on this host. It tails the shop's log files, so by default it runs where
          the stack and the shop both run. With the stack on another host, enable it on the
          shop's host and point `lokiUrl` at that host's Loki.
        '';
      };
      lokiUrl = mkOption {
        type = types.str;
        default = "http://${loopback data.ports.loki}";
        example = "http://monitor:3100";
        description = "Base URL of the Loki that Promtail pushes to.";
      };
      package = lib.mkPackageOption pkgs "promtail" {
        extraDescription = ''
          nixos-26.05 no longer packages Promtail; the flake's `nixosModules` set this to the
          package of its nixos-25.11 pin.
        '';
      };
    };

    grafana = {
      listenAddress = mkOption {
        type = types.str;
        default = "127.0.0.1";
        example = "0.0.0.0";
        description = "Address Grafana listens on (port ${toString data.ports.grafana}).";
      };
      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Open Grafana's port in the firewall.";
      };
      adminPasswordFile = mkOption {
        type = secretPath;
        default = null;
        example = "/run/secrets/grafana-admin-password";
        description = "File with the password of Grafana's `admin` user.";
      };
      secretKeyFile = mkOption {
        type = secretPath;
        default = null;
        example = "/run/secrets/grafana-secret-key";
        description = "File with Grafana's `secret_key` (e.g. `openssl rand -hex 32`).";
      };
      postgresPasswordFile = mkOption {
        type = secretPath;
        default = lib.attrByPath ["grafanaReadOnly" "passwordFile"] null shop;
        defaultText = lib.literalExpression "config.services.alertlab.shop.grafanaReadOnly.passwordFile";
        description = "File with the password of the read-only PostgreSQL role of the PostgreSQL data source.";
      };
    };
  };

  config = lib.mkMerge [
    (lib.mkIf cfg.enable {
      assertions = map (name: {
        assertion = cfg.grafana.${name} != null;
        message = "services.alertlab.observability.grafana.${name} must be set.";
      }) ["adminPasswordFile" "secretKeyFile" "postgresPasswordFile"];

      services.prometheus = {
        enable = true;
        inherit (cfg.prometheus) listenAddress;
        port = data.ports.prometheus;
        inherit (cfg.prometheus) retentionTime;
        globalConfig = {
          scrape_interval = profile.scrapeInterval;
          evaluation_interval = profile.ruleEvaluationInterval;
        };
        scrapeConfigs = data.prometheusScrapeConfigs {
          services = shopServices;
          inherit (profile) scrapeInterval;
          host = cfg.shopHost;
          prometheusPort = data.ports.prometheus;
        };
      };

      # Single node, filesystem storage, TSDB schema v13.
      services.loki = {
        enable = true;
        configuration = {
          auth_enabled = false;
          server = {
            http_listen_address = cfg.loki.listenAddress;
            http_listen_port = data.ports.loki;
            grpc_listen_address = "127.0.0.1";
            grpc_listen_port = data.ports.lokiGrpc;
          };
          common = {
            instance_addr = "127.0.0.1";
            path_prefix = "/var/lib/loki";
            replication_factor = 1;
            ring.kvstore.store = "inmemory";
            storage.filesystem = {
              chunks_directory = "/var/lib/loki/chunks";
              rules_directory = "/var/lib/loki/rules";
            };
          };
          schema_config.configs = [
            {
              from = "2024-01-01";
              store = "tsdb";
              object_store = "filesystem";
              schema = "v13";
              index = {
                prefix = "index_";
                period = "24h";
              };
            }
          ];
          analytics.reporting_enabled = false;
        };
      };

      services.grafana = {
        enable = true;
        inherit (cfg.grafana) openFirewall;
        settings = {
          server = {
            http_addr = cfg.grafana.listenAddress;
            http_port = data.ports.grafana;
          };
          security = {
            admin_user = "admin";
            admin_password = credential "admin-password";
            secret_key = credential "secret-key";
          };
          # The alerting cluster's gossip (used only with HA peers) on loopback, not Grafana's
          # default 0.0.0.0:9094: nothing of the lab listens off loopback unless it must.
          unified_alerting.ha_listen_address = loopback 9094;
          smtp = {
            enabled = true;
            host = loopback data.ports.mailpitSmtp;
            from_address = "grafana@alertlab.test";
            from_name = "alertlab Grafana";
            startTLS_policy = "NoStartTLS";
          };
        };
        provision = {
          enable = true;
          datasources.settings = datasources;
          dashboards.settings.providers = [
            {
              name = "alertlab";
              options.path = ../grafana/dashboards;
              disableDeletion = true;
            }
          ];
          alerting = {
            rules.settings = import ../grafana/profile.nix {
              rules = readJSON ../grafana/alert-rules.json;
              inherit (cfg) profile;
            };
            contactPoints.settings = readJSON ../grafana/contact-points.json;
            policies.settings = readJSON ../grafana/policies.json;
            templates.settings = readJSON ../grafana/templates.json;
          };
        };
      };

      systemd.services.grafana = {
        wants = readOnlyRoleUnit;
        after = readOnlyRoleUnit;
        serviceConfig.LoadCredential = lib.concatLists (lib.mapAttrsToList (name: file: lib.optional (file != null) "${name}:${file}") {
          admin-password = cfg.grafana.adminPasswordFile;
          secret-key = cfg.grafana.secretKeyFile;
          postgres-password = cfg.grafana.postgresPasswordFile;
        });
      };

      services.mailpit.instances.alertlab = {
        listen = loopback data.ports.mailpitHttp;
        smtp = loopback data.ports.mailpitSmtp;
      };
    })

    (lib.mkIf cfg.promtail.enable {
      # Promtail, from the nixos-25.11 pin, in a unit of our own with the old nixpkgs
      # module's hardening, except PrivateUsers: the log files are read through the shop's
      # group, which a private user namespace would not map.
      users.users.alertlab-promtail = {
        isSystemUser = true;
        group = "alertlab-promtail";
      };
      users.groups.alertlab-promtail = {};

      systemd.services.alertlab-promtail = {
        description = "Promtail shipping the alertlab shop logs to Loki";
        wantedBy = ["multi-user.target"];
        # The local Loki, when the stack runs here too.
        wants = lokiUnit;
        after = ["network.target"] ++ lokiUnit;
        serviceConfig = {
          ExecStart = "${cfg.promtail.package}/bin/promtail -config.file=${promtailConfig}";
          User = "alertlab-promtail";
          Group = "alertlab-promtail";
          SupplementaryGroups = lib.optional shopEnabled shop.group;
          StateDirectory = "alertlab-promtail";
          Restart = "on-failure";
          TimeoutStopSec = 10;
          CapabilityBoundingSet = "";
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          NoNewPrivileges = true;
          PrivateDevices = true;
          PrivateMounts = true;
          PrivateTmp = true;
          ProtectClock = true;
          ProtectControlGroups = true;
          ProtectHome = true;
          ProtectHostname = true;
          ProtectKernelLogs = true;
          ProtectKernelModules = true;
          ProtectKernelTunables = true;
          ProtectSystem = "strict";
          RestrictAddressFamilies = ["AF_INET" "AF_INET6" "AF_UNIX"];
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = lib.optional (!pkgs.stdenv.hostPlatform.isAarch64) "@system-service";
        };
      };
    })
  ];
}
