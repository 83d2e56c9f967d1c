# The shop: the four services (API, Frontend, Payment, Inventory) as systemd units on a
# local PostgreSQL, their migrations, the Grafana read-only database role, and labctl's
# traffic generator and webhook sink.
{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkOption mkEnableOption types;
  data = import ./lib;
  cfg = config.services.alertlab.shop;
  exe = name: "${cfg.package}/bin/${name}";

  # postgres:///shop?host=/run/postgresql: the socket, peer authentication as cfg.user.
  databaseUrl = "postgres:///${cfg.database.name}?host=/run/postgresql";
  url = port: "http://127.0.0.1:${toString port}";

  # Hardening as nixpkgs' own service modules do it (grafana, prometheus, attic).
  hardening = {
    CapabilityBoundingSet = [""];
    DeviceAllow = [""];
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    NoNewPrivileges = true;
    PrivateDevices = true;
    PrivateTmp = true;
    ProcSubset = "pid";
    ProtectClock = true;
    ProtectControlGroups = true;
    ProtectHome = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectProc = "invisible";
    ProtectSystem = "strict";
    RemoveIPC = true;
    RestrictAddressFamilies = ["AF_INET" "AF_INET6" "AF_UNIX"];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = ["@system-service" "~@privileged"];
  };

  # The static user and group every shop unit runs as: the log shipper reads the log
  # directory through the group (a DynamicUser's logs directory is root-only).
  identity = {
    User = cfg.user;
    Group = cfg.group;
  };

  serviceArgs = service:
    [
      "--listen"
      "${cfg.listenAddress}:${toString cfg.ports.${service.name}}"
      "--log-dir"
      cfg.logDir
    ]
    ++ lib.optionals service.database ["--database-url" databaseUrl]
    ++ lib.optionals (service.name == "api") ["--payment-url" (url cfg.ports.payment)]
    ++ lib.optionals (service.name == "frontend") ["--api-url" (url cfg.ports.api)]
    ++ lib.optionals (service.name == "inventory") ["--refresh-interval" (toString cfg.inventoryRefreshInterval)]
    ++ lib.optionals cfg.faults.enable ["--enable-faults"]
    ++ lib.optionals (cfg.faults.tokenFile != null) ["--fault-token-file" "%d/fault-token"];

  dbUnits = ["postgresql.target" "alertlab-migrate.service"];

  serviceUnit = service: {
    name = service.binary;
    value = {
      description = "alertlab shop ${service.name} service";
      wantedBy = ["multi-user.target"];
      after = ["network.target"] ++ lib.optionals service.database dbUnits;
      requires = lib.optionals service.database dbUnits;
      serviceConfig =
        hardening
        // identity
        // {
          ExecStart = lib.escapeShellArgs ([(exe service.binary)] ++ serviceArgs service);
          LogsDirectory = logsDirectory;
          LogsDirectoryMode = "0750";
          UMask = "0027";
          Restart = "on-failure";
          RestartSec = 2;
          LoadCredential = lib.optionals (cfg.faults.tokenFile != null) ["fault-token:${cfg.faults.tokenFile}"];
        };
    };
  };

  logsDirectory = lib.removePrefix "/var/log/" cfg.logDir;

  secretPath = types.nullOr types.externalPath;
in {
  options.services.alertlab.shop = {
    enable = mkEnableOption "the alertlab shop services (API, Frontend, Payment, Inventory) on a local PostgreSQL";

    package = lib.mkPackageOption pkgs "alertlab" {
      extraDescription = "The flake's `nixosModules` set this to the flake's own package.";
    };

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "0.0.0.0";
      description = "Address the four services listen on.";
    };

    ports = lib.listToAttrs (map (service: {
        inherit (service) name;
        value = mkOption {
          type = types.port;
          default = service.port;
          description = "Port of the ${service.name} service.";
        };
      })
      data.services);

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the four services' ports in the firewall (set `listenAddress` too).";
    };

    user = mkOption {
      type = types.str;
      default = "shop";
      description = ''
        System user (and PostgreSQL role, by peer authentication) the services run as.
        It owns the database, so it must equal `database.name`.
      '';
    };

    group = mkOption {
      type = types.str;
      default = "shop";
      description = "Group of the services; members (the log shipper) can read the log files.";
    };

    logDir = mkOption {
      type = types.str;
      default = "/var/log/alertlab";
      description = "Directory of the services' JSON log files `<name>.log` (under /var/log).";
    };

    database.name = mkOption {
      type = types.str;
      default = "shop";
      description = "PostgreSQL database of the shop, owned by `user`.";
    };

    inventoryRefreshInterval = mkOption {
      type = types.ints.positive;
      default = 5;
      description = "Seconds between the Inventory service's stock refreshes.";
    };

    faults = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = "Enable the runtime fault-injection API (`/admin/faults`) of every service.";
      };
      tokenFile = mkOption {
        type = secretPath;
        default = null;
        example = "/run/secrets/alertlab-fault-token";
        description = "File with a bearer token that allows fault API calls from other hosts than localhost.";
      };
    };

    grafanaReadOnly = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Create the read-only PostgreSQL role Grafana queries the shop with: SELECT on the columns its rules and panels read (`grafana/grafana-ro.sql`), nothing else.";
      };
      user = mkOption {
        type = types.str;
        default = "grafana_ro";
        description = "Name of the read-only role.";
      };
      passwordFile = mkOption {
        type = secretPath;
        default = null;
        example = "/run/secrets/alertlab-grafana-ro-password";
        description = "File with the read-only role's password (read when the role is set up; never copied to the store).";
      };
      allowedNetworks = mkOption {
        type = types.listOf types.str;
        default = [];
        example = ["192.168.1.0/24"];
        description = ''
          CIDR ranges (a single host is `/32`) of the hosts whose Grafana may reach the shop's
          PostgreSQL over TCP as the read-only role (a Grafana on another host). When not empty, PostgreSQL
          listens on every interface, `pg_hba.conf` admits only this role, to this database,
          from these networks, with `scram-sha-256`, and the PostgreSQL port is opened in the
          firewall.
        '';
      };
    };

    traffic = {
      enable = mkEnableOption "`labctl traffic`, a steady traffic generator against the shop";
    };

    webhookSink = {
      enable = mkEnableOption "`labctl sink`, the webhook receiver that records Grafana's notifications";
      port = mkOption {
        type = types.port;
        default = data.ports.webhookSink;
        description = ''
          Port of the webhook sink (on 127.0.0.1). The sink runs without the rest of the shop too
          (`enable` alone), on the host of the Grafana it receives from.
        '';
      };
    };
  };

  config = lib.mkMerge [
    (lib.mkIf cfg.enable (lib.mkMerge [
      {
        assertions = [
          {
            assertion = cfg.user == cfg.database.name;
            message = "services.alertlab.shop.user must equal database.name: the database is owned through ensureDBOwnership and reached by peer authentication.";
          }
          {
            assertion = lib.hasPrefix "/var/log/" cfg.logDir;
            message = "services.alertlab.shop.logDir must be under /var/log/ (systemd LogsDirectory).";
          }
          {
            assertion = lib.all (lib.hasInfix "/") cfg.grafanaReadOnly.allowedNetworks;
            message = "services.alertlab.shop.grafanaReadOnly.allowedNetworks takes CIDR ranges (a single host is /32), as pg_hba.conf does.";
          }
          {
            assertion = cfg.grafanaReadOnly.enable -> cfg.grafanaReadOnly.passwordFile != null;
            message = "services.alertlab.shop.grafanaReadOnly.passwordFile must be set when grafanaReadOnly.enable is true.";
          }
        ];

        users.users.${cfg.user} = {
          isSystemUser = true;
          inherit (cfg) group;
        };
        users.groups.${cfg.group} = {};

        services.postgresql = {
          enable = true;
          # Pinned (the flake's tests use the same major): a major upgrade needs a manual
          # pg_upgrade. Above the postgresql module's stateVersion-based mkDefault, below
          # a plain definition of the host.
          package = lib.mkOverride 999 pkgs.postgresql_17;
          ensureDatabases = [cfg.database.name];
          ensureUsers = [
            {
              name = cfg.user;
              ensureDBOwnership = true;
            }
          ];
        };

        systemd.services =
          lib.listToAttrs (map serviceUnit data.services)
          // {
            # The migrations: idempotent, before every service that uses the database.
            alertlab-migrate = {
              description = "alertlab shop database migrations";
              wantedBy = ["multi-user.target"];
              after = ["postgresql.target"];
              requires = ["postgresql.target"];
              serviceConfig =
                hardening
                // identity
                // {
                  Type = "oneshot";
                  RemainAfterExit = true;
                  ExecStart = lib.escapeShellArgs [(exe "shop-api") "migrate" "--database-url" databaseUrl];
                };
            };
          };

        networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall (lib.attrValues cfg.ports);
      }

      (lib.mkIf cfg.grafanaReadOnly.enable {
        # SELECT on the columns Grafana's rules and panels read, nothing else
        # (grafana/grafana-ro.sql, which the tests run too).
        systemd.services.alertlab-grafana-ro = {
          description = "alertlab read-only PostgreSQL role for Grafana";
          wantedBy = ["multi-user.target"];
          after = ["postgresql.target" "alertlab-migrate.service"];
          requires = ["postgresql.target" "alertlab-migrate.service"];
          environment = {
            GRAFANA_RO_ROLE = cfg.grafanaReadOnly.user;
            GRAFANA_RO_SQL = "${../grafana/grafana-ro.sql}";
            PSQL = "${config.services.postgresql.package}/bin/psql";
          };
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            User = config.services.postgresql.superUser;
            LoadCredential = ["password:${cfg.grafanaReadOnly.passwordFile}"];
            ExecStart = lib.escapeShellArgs [
              pkgs.runtimeShell
              "${../grafana/grafana-ro.sh}"
              "--dbname"
              cfg.database.name
            ];
            PrivateTmp = true;
            ProtectHome = true;
            ProtectSystem = "strict";
            NoNewPrivileges = true;
          };
        };
      })

      (lib.mkIf (cfg.grafanaReadOnly.enable && cfg.grafanaReadOnly.allowedNetworks != []) {
        # A Grafana on another host: the read-only role only, this database only, these
        # networks only (pg_hba.conf takes the first matching line; these come first).
        services.postgresql = {
          enableTCPIP = true;
          authentication =
            lib.concatMapStrings (network: ''
              host ${cfg.database.name} ${cfg.grafanaReadOnly.user} ${network} scram-sha-256
            '')
            cfg.grafanaReadOnly.allowedNetworks;
        };
        networking.firewall.allowedTCPPorts = [config.services.postgresql.settings.port];
      })

      (lib.mkIf cfg.traffic.enable {
        systemd.services.alertlab-traffic = {
          description = "alertlab traffic generator (labctl traffic)";
          wantedBy = ["multi-user.target"];
          wants = ["shop-api.service" "shop-frontend.service"];
          after = ["network.target" "shop-api.service" "shop-frontend.service"];
          serviceConfig =
            hardening
            // identity
            // {
              ExecStart = lib.escapeShellArgs [
                (exe "labctl")
                "traffic"
                "--api-url"
                (url cfg.ports.api)
                "--frontend-url"
                (url cfg.ports.frontend)
              ];
              Restart = "on-failure";
              RestartSec = 5;
            };
        };
      })
    ]))

    (lib.mkIf cfg.webhookSink.enable {
      systemd.services.alertlab-sink = {
        description = "alertlab webhook sink (labctl sink)";
        wantedBy = ["multi-user.target"];
        after = ["network.target"];
        serviceConfig =
          hardening
          // {
            # Its own transient user: the sink runs without the shop's user too.
            DynamicUser = true;
            ExecStart = lib.escapeShellArgs [
              (exe "labctl")
              "sink"
              "--listen"
              "127.0.0.1:${toString cfg.webhookSink.port}"
              "--data-dir"
              "/var/lib/alertlab-sink"
            ];
            StateDirectory = "alertlab-sink";
            Restart = "on-failure";
            RestartSec = 2;
          };
      };
    })
  ];
}
