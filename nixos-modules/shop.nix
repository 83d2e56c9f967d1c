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

  # The token between the API and the payment service: the file given, else one generated
  # at first boot (alertlab-payment-token below), never in the store.
  generatePaymentToken = cfg.paymentTokenFile == null;
  paymentTokenFile =
    if generatePaymentToken
    then "/var/lib/alertlab-payment-token/payment-token"
    else cfg.paymentTokenFile;
  usesPaymentToken = service: service.name == "api" || service.name == "payment";

  # postgres:///shop?host=/run/postgresql: the socket, peer authentication as cfg.user.
  databaseUrl = "postgres:///${cfg.database.name}?host=/run/postgresql";
  url = port: "http://127.0.0.1:${toString port}";

  # The sandboxing of every unit here: nixos-modules/lib/unit-hardening.nix.
  hardening = data.unitHardening.service;
  inherit (data.unitHardening) noNetwork;

  # MemoryMax and TasksMax of each unit, with the reasons: nixos-modules/lib/unit-limits.json.
  limits = name: data.unitLimits.${name}.serviceConfig;

  # Each service holds at most this many client connections (--max-connections); the
  # open-file limit leaves room above it for the database pool, calls to other services and
  # the log file.
  maxConnections = 512;
  openFiles = 4 * maxConnections;

  # Who may exchange packets with the four services besides loopback (IPAddressAllow).
  serviceClients = ["localhost"] ++ cfg.allowedNetworks;

  # What the fault API answers to besides loopback names (--admin-allowed-hosts).
  adminAllowedHosts = data.adminAllowedHosts {
    inherit (config.networking) hostName domain interfaces;
    inherit (cfg) listenAddress;
  };

  # Grafana's webhook contact point presents this token to the sink.
  generatedSinkToken = data.generatedSinkTokenFile;
  sinkTokenFile =
    if cfg.webhookSink.tokenFile != null
    then cfg.webhookSink.tokenFile
    else generatedSinkToken;

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
      "--log-rotate-size"
      cfg.logRotation.size
      "--log-rotate-keep"
      (toString cfg.logRotation.keep)
      "--max-connections"
      (toString maxConnections)
    ]
    ++ lib.optionals service.database ["--database-url" databaseUrl]
    ++ lib.optionals (service.name == "api") ["--payment-url" (url cfg.ports.payment) "--trusted-proxies" (toString cfg.trustedProxies)]
    ++ lib.optionals (usesPaymentToken service) ["--payment-token-file" "%d/payment-token"]
    ++ lib.optionals (service.name == "frontend") ["--api-url" (url cfg.ports.api)]
    ++ lib.optionals (service.name == "inventory") ["--refresh-interval" (toString cfg.inventoryRefreshInterval)]
    ++ lib.optionals cfg.faults.enable (
      ["--enable-faults" "--fault-token-file" "%d/fault-token"]
      ++ lib.optionals (adminAllowedHosts != []) ["--admin-allowed-hosts" (lib.concatStringsSep "," adminAllowedHosts)]
    );

  dbUnits = ["postgresql.target" "alertlab-migrate.service"];
  tokenUnits = service: lib.optionals (generatePaymentToken && usesPaymentToken service) ["alertlab-payment-token.service"];

  serviceUnit = service: {
    name = service.binary;
    value = {
      description = "alertlab shop ${service.name} service";
      wantedBy = ["multi-user.target"];
      after = ["network.target"] ++ lib.optionals service.database dbUnits ++ tokenUnits service;
      requires = lib.optionals service.database dbUnits ++ tokenUnits service;
      serviceConfig =
        hardening
        // identity
        // limits service.binary
        // {
          ExecStart = lib.escapeShellArgs ([(exe service.binary)] ++ serviceArgs service);
          # `systemctl reload` rotates the log file now (the services rotate on SIGHUP).
          ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
          LogsDirectory = logsDirectory;
          LogsDirectoryMode = "0750";
          UMask = "0027";
          Restart = "on-failure";
          RestartSec = 2;
          # (Without a token file the module's assertion fails the build.)
          LoadCredential =
            lib.optionals (cfg.faults.enable && cfg.faults.tokenFile != null) ["fault-token:${cfg.faults.tokenFile}"]
            ++ lib.optionals (usesPaymentToken service) ["payment-token:${paymentTokenFile}"];
          IPAddressAllow = serviceClients;
          LimitNOFILE = openFiles;
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

    allowedNetworks = mkOption {
      type = types.listOf types.str;
      default =
        if lib.elem cfg.listenAddress ["127.0.0.1" "::1" "localhost"]
        then []
        else ["any"];
      defaultText = lib.literalExpression ''if listenAddress is loopback then [ ] else [ "any" ]'';
      example = ["192.168.1.0/24"];
      description = ''
        Networks besides loopback that may exchange IP packets with the four services (systemd's
        `IPAddressAllow`; everything else is denied with `IPAddressDeny=any`): addresses with an
        optional prefix length, or `any`, `link-local`, `multicast`. Give the networks of the
        hosts that scrape or call the services when `listenAddress` is not loopback.
      '';
    };

    paymentTokenFile = mkOption {
      type = secretPath;
      default = null;
      example = "/run/secrets/alertlab-payment-token";
      description = ''
        File with the bearer token the API sends to the payment service, which refuses
        payments and refunds without it. By default one is generated at first boot under
        /var/lib/alertlab-payment-token (root-only).
      '';
    };

    trustedProxies = mkOption {
      type = types.ints.between 0 8;
      default = 1;
      description = ''
        Proxies on this host in front of the API whose `X-Forwarded-For` entries it trusts
        (`--trusted-proxies`): the client of a login or an anonymous order is the entry this
        many places from the right, for requests from loopback only. 1 fits the lab: the
        frontend, and `labctl traffic` simulating clients, each write one entry.
      '';
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

    logRotation = {
      size = mkOption {
        type = types.strMatching "[0-9]+(B|KiB|MiB|GiB)?";
        default = "10MiB";
        description = ''
          Size at which each service rotates its log file (`<name>.log` becomes `<name>.log.1`),
          1KiB to 1GiB. The services rotate their own files (no logrotate), so that the log
          shipper neither loses nor re-reads a line; `systemctl reload shop-<name>` rotates now.
        '';
      };
      keep = mkOption {
        type = types.ints.between 1 100;
        default = 4;
        description = ''
          Rotated files kept per service (`<name>.log.1` to `.N`); older ones are deleted. The
          log directory holds at most (keep + 1) x size per service: 50 MiB with the defaults.
        '';
      };
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
        description = ''
          File with the bearer token every fault API request must present, from loopback too
          (required with `faults.enable`). The API also answers only requests addressed to this
          host's name, FQDN, static addresses or loopback, and none made by a web page.
        '';
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
      tokenFile = mkOption {
        type = secretPath;
        default = null;
        example = "/run/secrets/alertlab-sink-token";
        description = ''
          File with the token the sink requires of every notification
          (`Authorization: Bearer`), which this host's Grafana presents. `null`: generated on
          first boot as /var/lib/alertlab-sink-token/token (root-only).
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
          {
            assertion = cfg.faults.enable -> cfg.faults.tokenFile != null;
            message = "services.alertlab.shop.faults.tokenFile must be set when faults.enable is true: the fault API requires its token on every request.";
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
                // noNetwork
                // identity
                // limits "alertlab-migrate"
                // {
                  Type = "oneshot";
                  RemainAfterExit = true;
                  ExecStart = lib.escapeShellArgs [(exe "shop-api") "migrate" "--database-url" databaseUrl];
                };
            };
          };

        networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall (lib.attrValues cfg.ports);
      }

      (lib.mkIf generatePaymentToken {
        # Written once, root-only; the API and payment units get it through LoadCredential.
        systemd.services.alertlab-payment-token = {
          description = "alertlab payment token (generated once)";
          wantedBy = ["multi-user.target"];
          before = ["shop-api.service" "shop-payment.service"];
          serviceConfig =
            hardening
            // limits "alertlab-payment-token"
            // {
              Type = "oneshot";
              RemainAfterExit = true;
              StateDirectory = "alertlab-payment-token";
              StateDirectoryMode = "0700";
              UMask = "0077";
              PrivateNetwork = true;
              RestrictAddressFamilies = ["AF_UNIX"];
            };
          script = ''
            token="$STATE_DIRECTORY/payment-token"
            if [ ! -s "$token" ]; then
              head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32 > "$token"
            fi
          '';
        };
      })

      (lib.mkIf cfg.grafanaReadOnly.enable {
        # SELECT on the columns Grafana's rules and panels read, nothing else
        # (grafana/grafana-ro.sql, which the tests run too).
        systemd.services.alertlab-grafana-ro = {
          description = "alertlab read-only PostgreSQL role for Grafana";
          wantedBy = ["multi-user.target"];
          after = ["postgresql.target" "alertlab-migrate.service"];
          requires = ["postgresql.target" "alertlab-migrate.service"];
          # It runs as the PostgreSQL superuser, so everything else is taken away: no network
          # (psql reaches the server through its socket file), no devices, no writes outside
          # its private /tmp. Not RemoveIPC: it would remove the server's own shared memory,
          # which belongs to the same user, when this unit stops.
          environment = {
            GRAFANA_RO_ROLE = cfg.grafanaReadOnly.user;
            GRAFANA_RO_SQL = "${../grafana/grafana-ro.sql}";
            PSQL = "${config.services.postgresql.package}/bin/psql";
          };
          serviceConfig =
            data.unitHardening.withoutIPCRemoval
            // noNetwork
            // limits "alertlab-grafana-ro"
            // {
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
              UMask = "0077";
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
            // limits "alertlab-traffic"
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
              # The shop's services and its own control endpoint, all on 127.0.0.1.
              IPAddressAllow = "localhost";
            };
        };
      })
    ]))

    (lib.mkIf cfg.webhookSink.enable {
      systemd.services =
        {
          alertlab-sink = {
            description = "alertlab webhook sink (labctl sink)";
            wantedBy = ["multi-user.target"];
            after = ["network.target"] ++ lib.optional (cfg.webhookSink.tokenFile == null) "alertlab-sink-token.service";
            requires = lib.optional (cfg.webhookSink.tokenFile == null) "alertlab-sink-token.service";
            serviceConfig =
              hardening
              // limits "alertlab-sink"
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
                  "--token-file"
                  "%d/token"
                ];
                LoadCredential = ["token:${sinkTokenFile}"];
                StateDirectory = "alertlab-sink";
                Restart = "on-failure";
                RestartSec = 2;
                # Grafana on this host posts to it, labctl verify reads it: loopback only.
                IPAddressAllow = "localhost";
                LimitNOFILE = openFiles;
              };
          };
        }
        // lib.optionalAttrs (cfg.webhookSink.tokenFile == null) {
          # The token shared by the sink and this host's Grafana, made once.
          alertlab-sink-token = {
            description = "alertlab webhook sink token (generated once)";
            serviceConfig =
              hardening
              // noNetwork
              // limits "alertlab-sink-token"
              // {
                Type = "oneshot";
                RemainAfterExit = true;
                StateDirectory = "alertlab-sink-token";
                StateDirectoryMode = "0700";
                UMask = "0077";
                RestrictAddressFamilies = "none";
              };
            script = ''
              if [ ! -s ${generatedSinkToken} ]; then
                head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32 > ${generatedSinkToken}
              fi
            '';
          };
        };
    })
  ];
}
