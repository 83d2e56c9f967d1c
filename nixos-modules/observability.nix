# The observability stack of the lab: Prometheus scraping the shop, Loki with Promtail or
# Grafana Alloy shipping the shop's log files (`logShipper`), Grafana with the provisioned
# data sources, dashboards and alerting of ../grafana, and Mailpit as the SMTP sink.
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

  # The webhook sink on this host (the shop module's), which requires a token of Grafana.
  sink = lib.attrByPath ["webhookSink"] {} shop;
  sinkEnabled = sink.enable or false;
  sinkTokenGenerated = sinkEnabled && (sink.tokenFile or null) == null;
  sinkTokenFile =
    if sinkTokenGenerated
    then data.generatedSinkTokenFile
    else sink.tokenFile or null;
  sinkTokenUnit = lib.optional sinkTokenGenerated "alertlab-sink-token.service";

  profile = data.profiles.${cfg.profile};
  lokiUnit = lib.optional cfg.enable "loki.service";
  loopback = port: "127.0.0.1:${toString port}";
  readJSON = file: builtins.fromJSON (builtins.readFile file);

  # Secrets reach Grafana as systemd credentials of grafana.service, read by Grafana's
  # file provider: the files stay outside the store and root-only.
  credential = name: "$__file{/run/credentials/grafana.service/${name}}";

  # Data sources and dashboard provider (nixos-modules/lib/grafana-provisioning.nix): the
  # dashboards in the alert rules' folder, $__rate_interval from the profile's scrapes.
  provisioning = import ./lib/grafana-provisioning.nix {
    datasources = readJSON ../grafana/datasources.json;
    rules = readJSON ../grafana/alert-rules.json;
    dashboardsPath = ../grafana/dashboards;
    inherit (profile) scrapeInterval;
    postgresUrl = "${cfg.shopHost}:${toString data.ports.postgresql}";
    postgresPassword = credential "postgres-password";
  };

  # The webhook contact point presents the sink's token (`Authorization: Bearer`).
  contactPoints = let
    file = readJSON ../grafana/contact-points.json;
    withToken = receiver:
      if receiver.type == "webhook" && sinkEnabled
      then receiver // {settings = receiver.settings // {authorization_credentials = credential "sink-token";};}
      else receiver;
  in
    file
    // {
      contactPoints = map (point: point // {receivers = map withToken point.receivers;}) file.contactPoints;
    };

  promtailConfig = pkgs.writeText "alertlab-promtail.json" (builtins.toJSON (data.promtailConfig {
    services = shopServices;
    inherit logDir;
    inherit (cfg.promtail) lokiUrl;
    positionsFile = "/var/lib/alertlab-promtail/positions.yaml";
    httpListenPort = data.ports.promtail;
  }));

  # Whether this host runs the shop, whose log files a shipper tails.
  shipperDefault = shipper: shopEnabled && cfg.logShipper == shipper;

  # MemoryMax and TasksMax of the shippers and Loki, with the reasons:
  # nixos-modules/lib/unit-limits.json. They are Go programs: a soft limit below MemoryMax
  # makes the garbage collector work harder before the kernel's OOM killer would stop them.
  goLimits = unit: let
    limits = data.unitLimits.${unit};
  in {
    inherit (limits) serviceConfig;
    environment.GOMEMLIMIT = "${toString (limits.memoryMiB * 4 / 5)}MiB";
  };

  # Hardening of the shipper units (the old nixpkgs Promtail module's), except PrivateUsers:
  # the log files are read through the shop's group, which a private user namespace would
  # not map.
  shipperHardening = {
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
    # A stop flushes the last batch when Loki answers (batches wait at most 1 s); while Loki
    # is down the client would retry it for minutes (Promtail's and Alloy's default backoff,
    # 10 retries up to 5 min), so systemd ends it after 10 s (SIGKILL).
    TimeoutStopSec = 10;
  };

  secretPath = types.nullOr types.externalPath;
in {
  options.services.alertlab.observability = {
    enable = lib.mkEnableOption "the alertlab observability stack (Prometheus, Loki, Grafana, Mailpit); the log shipper runs where the shop does";

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

    loki = {
      listenAddress = mkOption {
        type = types.str;
        default = "127.0.0.1";
        example = "0.0.0.0";
        description = ''
          Address Loki's HTTP API listens on (port ${toString data.ports.loki}), e.g. for a log
          shipper on the shop's host (open the port in the firewall yourself). Its gRPC port
          stays on 127.0.0.1.
        '';
      };
      retention = mkOption {
        type = types.strMatching "[0-9]+(h|d|w)";
        default = "168h";
        example = "720h";
        description = ''
          How long Loki keeps log lines (at least 24h): its compactor deletes older chunks
          (`limits_config.retention_period`).
        '';
      };
    };

    logShipper = mkOption {
      type = types.enum ["promtail" "alloy"];
      default = "promtail";
      description = ''
        Which program ships the shop's log files to Loki on the host the shop runs on:
        `promtail` (the seed's; end of life since March 2026, taken from the nixos-25.11 pin) or
        `alloy` (Grafana Alloy from this nixpkgs). Both tail the same files with the same labels
        and parsing (generated from one description, nixos-modules/lib/shop.json).
      '';
    };

    promtail = {
      enable = mkOption {
        type = types.bool;
        default = shipperDefault "promtail";
        defaultText = lib.literalExpression ''config.services.alertlab.shop.enable && config.services.alertlab.observability.logShipper == "promtail"'';
        description = ''
          Run Promtail on this host. It tails the shop's log files, so it runs where the shop
          does: with the stack on another host, point `lokiUrl` at that host's Loki.
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

    alloy = {
      enable = mkOption {
        type = types.bool;
        default = shipperDefault "alloy";
        defaultText = lib.literalExpression ''config.services.alertlab.shop.enable && config.services.alertlab.observability.logShipper == "alloy"'';
        description = ''
          Run Grafana Alloy (`services.alloy`) on this host to ship the shop's log files; like
          Promtail, it runs where the shop does. Its HTTP server (UI, metrics) listens on
          127.0.0.1:${toString data.ports.alloy}.
        '';
      };
      lokiUrl = mkOption {
        type = types.str;
        default = cfg.promtail.lokiUrl;
        defaultText = lib.literalExpression "config.services.alertlab.observability.promtail.lokiUrl";
        example = "http://monitor:3100";
        description = "Base URL of the Loki that Alloy pushes to (Promtail's by default, so switching `logShipper` keeps the destination).";
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
          # Retention by the compactor; the TSDB index period is 24h, as retention requires.
          compactor = {
            working_directory = "/var/lib/loki/compactor";
            retention_enabled = true;
            delete_request_store = "filesystem";
          };
          limits_config = {
            retention_period = cfg.loki.retention;
            # The lab writes about ten streams (service x level); the default is 5000.
            max_global_streams_per_user = 1000;
          };
          # Replaying the WAL after a crash holds at most this much before flushing (default
          # 4GB, more than the unit may use).
          ingester.wal.replay_memory_ceiling = "256MB";
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

      # A single-node Loki of a lab: the WAL replay ceiling (256 MB) plus queries over a day
      # of the shop's logs fit, with the rest of the demo VM's 4 GiB left to the others.
      systemd.services.loki = goLimits "loki";

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
          datasources.settings = provisioning.datasources;
          dashboards.settings.providers = provisioning.dashboardProviders;
          alerting = {
            rules.settings = import ../grafana/profile.nix {
              rules = readJSON ../grafana/alert-rules.json;
              inherit (cfg) profile;
            };
            contactPoints.settings = contactPoints;
            policies.settings = readJSON ../grafana/policies.json;
            templates.settings = readJSON ../grafana/templates.json;
          };
        };
      };

      systemd.services.grafana = {
        wants = readOnlyRoleUnit ++ sinkTokenUnit;
        after = readOnlyRoleUnit ++ sinkTokenUnit;
        serviceConfig.LoadCredential = lib.concatLists (lib.mapAttrsToList (name: file: lib.optional (file != null) "${name}:${file}") {
          admin-password = cfg.grafana.adminPasswordFile;
          secret-key = cfg.grafana.secretKeyFile;
          postgres-password = cfg.grafana.postgresPasswordFile;
          sink-token = sinkTokenFile;
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

      # Four files, one batch in flight: tens of MiB; the cap stops a runaway.
      systemd.services.alertlab-promtail = lib.mkMerge [
        (goLimits "alertlab-promtail")
        {
          description = "Promtail shipping the alertlab shop logs to Loki";
          wantedBy = ["multi-user.target"];
          # The local Loki, when the stack runs here too.
          wants = lokiUnit;
          after = ["network.target"] ++ lokiUnit;
          serviceConfig =
            shipperHardening
            // {
              ExecStart = "${cfg.promtail.package}/bin/promtail -config.file=${promtailConfig}";
              User = "alertlab-promtail";
              Group = "alertlab-promtail";
              SupplementaryGroups = lib.optional shopEnabled shop.group;
              # The positions file (/var/lib/alertlab-promtail/positions.yaml) survives restarts.
              StateDirectory = "alertlab-promtail";
              Restart = "on-failure";
            };
        }
      ];
    })

    (lib.mkIf cfg.alloy.enable {
      # Grafana Alloy from this nixpkgs (services.alloy), its configuration in /etc so that a
      # change reloads it (the module's reloadTriggers) instead of restarting it.
      services.alloy = {
        enable = true;
        extraFlags = [
          "--server.http.listen-addr=127.0.0.1:${toString data.ports.alloy}"
          "--disable-reporting"
        ];
      };
      environment.etc."alloy/config.alloy".text = data.alloyConfig {
        services = shopServices;
        inherit logDir;
        inherit (cfg.alloy) lokiUrl;
      };
      # The Go runtime and its component graph take more than Promtail; still a cap well above
      # what four tailed files need.
      systemd.services.alloy = lib.mkMerge [
        (goLimits "alloy")
        {
          wants = lokiUnit;
          after = lokiUnit;
          serviceConfig =
            shipperHardening
            // {
              # The shop's log files, through its group; not the journal the module adds.
              SupplementaryGroups = lib.mkForce (lib.optional shopEnabled shop.group);
            };
        }
      ];
    })

    {
      assertions = [
        {
          assertion = !(cfg.promtail.enable && cfg.alloy.enable);
          message = "services.alertlab.observability: Promtail and Alloy would both ship the shop's logs (every line twice in Loki); set logShipper instead of enabling both.";
        }
      ];
    }
  ];
}
