# The Python test scripts of the VM tests, exactly as the NixOS test driver gets them: the
# values a script needs, as typed Python assignments computed here at evaluation time,
# followed by the script file (alerts.py, hardening.py, two-hosts.py).
#
# Only builtins are used, so the checks here evaluate this file with nix-instantiate and run
# pyflakes and mypy on the very strings the driver lints and type-checks
# (services/xtask/tests/vm_tests.rs).
let
  shop = import ../nixos-modules/lib;
  rules = builtins.fromJSON (builtins.readFile ../grafana/alert-rules.json);
  datasources = (builtins.fromJSON (builtins.readFile ../grafana/datasources.json)).datasources;

  allRules = builtins.concatMap (group: group.rules) rules.groups;
  datasourceUids = map (datasource: datasource.uid) datasources;

  # The data source a rule queries: the first query that is not a server-side expression.
  ruleDatasource = rule: (builtins.head (builtins.filter (query: query.datasourceUid != "__expr__") rule.data)).datasourceUid;

  # One rule per data source that the payment-outage scenario fires (two-hosts.nix): the
  # scenario that exercises all three data sources at once.
  outageScenario = "payment-outage";
  outageRules = builtins.filter (rule: rule.labels.scenario == outageScenario) allRules;
  firingPerDatasource = builtins.listToAttrs (map (uid: {
      name = uid;
      value = let
        matching = builtins.filter (rule: ruleDatasource rule == uid) outageRules;
      in
        if matching == []
        then throw "vm-tests/scripts.nix: no ${outageScenario} rule queries the data source ${uid}"
        else (builtins.head matching).uid;
    })
    datasourceUids);

  # What the lab profile writes (nixos-modules/lab.nix) and the module defaults
  # (nixos-modules/shop.nix) the scripts read.
  secretsDir = "/var/lib/alertlab-secrets";
  # The lab profile's secrets; scenario-token because nodes/hardening.nix enables the
  # scenario control endpoint.
  secretNames = ["fault-token" "grafana-admin-password" "grafana-ro-password" "grafana-secret-key" "scenario-token"];
  # The secrets the shop module generates outside the lab's directory: the payment token
  # (shop.nix, alertlab-payment-token) and the webhook sink's token (lib/shop.json).
  moduleSecretFiles = ["/var/lib/alertlab-payment-token/payment-token" shop.generatedSinkTokenFile];
  readOnlyRole = "grafana_ro";
  database = "shop";
  logDir = "/var/log/alertlab";

  # Fixed test secrets of two-hosts.nix (nodes/test-secrets.nix).
  testSecretsDir = "/etc/alertlab-test";

  servicePorts = map (service: service.port) shop.services;
  shopUnits = map (service: "${service.binary}.service") shop.services;

  # The log shippers (logShipper in nixos-modules/observability.nix): unit and HTTP port.
  shippers = {
    promtail = {
      unit = "alertlab-promtail.service";
      port = shop.ports.promtail;
    };
    alloy = {
      unit = "alloy.service";
      port = shop.ports.alloy;
    };
  };

  # Units and ports of the whole lab on one host, with `shipper` shipping the logs.
  labUnits = shipper:
    ["postgresql.target" "alertlab-migrate.service" "alertlab-grafana-ro.service"]
    ++ shopUnits
    ++ ["alertlab-traffic.service" "alertlab-sink.service" "loki.service" shipper.unit "prometheus.service" "grafana.service" "mailpit-alertlab.service"];
  labPorts = shipper:
    servicePorts
    ++ [shipper.port]
    ++ (with shop.ports; [grafana prometheus loki webhookSink mailpitHttp mailpitSmtp]);

  # `labctl audit memory` in the one-host lab: the units of ours and Loki and the shipper,
  # which must each have a MemoryMax, and the other long-running units of nixpkgs' modules,
  # reported without one.
  memoryLimited = shipper: shopUnits ++ ["alertlab-traffic.service" "alertlab-sink.service" "loki.service" shipper.unit];
  memoryReported = ["postgresql.service" "prometheus.service" "grafana.service" "mailpit-alertlab.service"];

  # The lab of vm-hardening: the one-host lab with the scenario control endpoint.
  hardeningUnits = labUnits shippers.promtail ++ ["alertlab-scenarios.service"];

  # A Python assignment; toJSON of strings, integers, lists and attribute sets is a Python
  # literal (no booleans, null or floats are passed).
  assign = name: type: value: "${name}: ${type} = ${builtins.toJSON value}\n";

  script = file: parameters:
    "# Set by vm-tests/scripts.nix at evaluation time.\n"
    + builtins.concatStringsSep "" parameters
    + "\n"
    + builtins.readFile file;

  # Command-line words, each quoted for the shell (the scripts put them in single commands),
  # and a flag repeated for each of `values`.
  quote = word: "'${word}'";
  words = list: builtins.concatStringsSep " " (map quote list);
  flags = flag: values: builtins.concatStringsSep " " (map (value: "${flag} ${quote value}") values);

  toUpper = builtins.replaceStrings ["a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z"] ["A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z"];

  grafanaUrl = "http://127.0.0.1:${toString shop.ports.grafana}";
  lokiUrl = "http://127.0.0.1:${toString shop.ports.loki}";

  # The services' fault APIs at `host`, as `labctl audit fault-api` takes them.
  faultApis = host: flags "--service" (map (service: "${service.name}=http://${host}:${toString service.port}") shop.services);

  # The levels vm-hardening accepts (vm-tests/exposure.json, checked by xtask nixos-eval).
  exposure = (builtins.fromJSON (builtins.readFile ./exposure.json)).units;
  # The one-host alerts test (alerts.py) with `shipper` shipping the logs, running labctl
  # verify's `phases` (all when empty).
  alerts = {
    shipper,
    phases,
  }:
    script ./alerts.py [
      (assign "UNITS" "list[str]" (labUnits shipper))
      (assign "PORTS" "list[int]" (labPorts shipper))
      (assign "GRAFANA" "str" grafanaUrl)
      (assign "LOKI" "str" lokiUrl)
      # labctl as root in the VM with the lab's secrets (verify runs the scenarios there).
      (assign "LABCTL" "str" "labctl --grafana-password-file ${quote "${secretsDir}/grafana-admin-password"} --fault-token-file ${quote "${secretsDir}/fault-token"} --loki-url ${quote lokiUrl}")
      (assign "SERVICES" "str" (flags "--service" (map (service: service.name) shop.services)))
      # `systemctl reload` rotates a service's log (its ExecReload sends SIGHUP); the services
      # name the rotated file <name>.log.1.
      (assign "SERVICE_UNITS" "str" (words shopUnits))
      (assign "ROTATED_FILES" "list[str]" (map (service: "${logDir}/${service.logFile}.1") shop.services))
      (assign "VERIFY_PHASES" "str" (
        if phases == []
        then ""
        else "--phases ${builtins.concatStringsSep "," (map toString phases)}"
      ))
      (assign "MEMORY" "str" "${words (memoryLimited shipper)} ${flags "--without-limit" memoryReported}")
      (assign "LOG_FILES" "str" (flags "--service" (map (service: "${service.name}=${logDir}/${service.logFile}") shop.services)))
      (assign "STOP_UNITS" "str" (words (["alertlab-traffic.service"] ++ shopUnits)))
    ];
in {
  # The units each one-node test's script waits for, reloads, stops or audits: xtask
  # nixos-eval checks that the test's node defines each of them (services; targets are not
  # checked).
  units = {
    alerts = labUnits shippers.promtail ++ memoryLimited shippers.promtail ++ memoryReported;
    alerts-alloy = labUnits shippers.alloy ++ memoryLimited shippers.alloy ++ memoryReported;
    hardening = hardeningUnits ++ builtins.attrNames exposure;
  };

  # vm-alerts: Promtail, every phase of labctl verify.
  alerts = alerts {
    shipper = shippers.promtail;
    phases = [];
  };

  # vm-alerts-alloy: Grafana Alloy; phase 1 runs the scenarios of all three Loki rules
  # (payment-outage, stock-depletion, error-burst), which xtask's tests check against
  # labctl's phases.
  alerts-alloy = alerts {
    shipper = shippers.alloy;
    phases = [1];
  };

  # ownAddress: the VM's own address on the test network (not loopback).
  hardening = {ownAddress}:
    script ./hardening.py [
      (assign "UNITS" "list[str]" hardeningUnits)
      (assign "SERVICE_PORTS" "list[int]" servicePorts)
      (assign "EXPOSURE" "str" (words (map (unit: "${unit}=${builtins.toJSON exposure.${unit}.max}") (builtins.attrNames exposure))))
      (assign "READ_ONLY_ROLE" "str" "--database-url ${quote "postgres://${readOnlyRole}@127.0.0.1:${toString shop.ports.postgresql}/${database}"} --database-password-file ${quote "${secretsDir}/grafana-ro-password"}")
      (assign "SECRETS_DIR" "str" secretsDir)
      (assign "SECRET_FILES" "list[str]" (map (name: "${secretsDir}/${name}") secretNames ++ moduleSecretFiles))
      (assign "MODULE_SECRETS" "str" (flags "--secret-file" moduleSecretFiles))
      # Where a secret would be if one leaked: Grafana's config.ini and provisioning, the
      # read-only role's SQL.
      (assign "STORE_CONTROLS" "str" (flags "--control" [readOnlyRole "/run/credentials/grafana.service/admin-password"]))
      (assign "FAULT_APIS" "str" (faultApis ownAddress))
      # The services listen on every address in this node (nodes/hardening.nix); dhcpcd may
      # listen for leases on the test network.
      (assign "LISTENER_ALLOWS" "str" (flags "--allow" (map (port: "0.0.0.0:${toString port}/tcp") servicePorts ++ ["0.0.0.0:68/udp" "[::]:546/udp"])))
    ];

  two-hosts = script ./two-hosts.py [
    (assign "SHOP_UNITS" "list[str]" (["postgresql.target" "alertlab-migrate.service" "alertlab-grafana-ro.service"] ++ shopUnits ++ ["alertlab-traffic.service" "alertlab-promtail.service"]))
    (assign "MONITOR_UNITS" "list[str]" ["prometheus.service" "loki.service" "grafana.service" "alertlab-sink.service" "mailpit-alertlab.service"])
    (assign "GRAFANA" "str" grafanaUrl)
    (assign "LOKI" "str" lokiUrl)
    # labctl on the monitor drives the shop over the network, so the fault API needs the token.
    (assign "LABCTL_REMOTE" "str" (builtins.concatStringsSep " " (map (service: "LABCTL_${toUpper service.name}_URL=http://shop:${toString service.port}") shop.services
      ++ [
        "LABCTL_FAULT_TOKEN_FILE=${testSecretsDir}/fault-token"
        "LABCTL_GRAFANA_PASSWORD_FILE=${testSecretsDir}/grafana-admin-password"
        "labctl --loki-url ${lokiUrl}"
      ])))
    (assign "SERVICES" "str" (flags "--service" (map (service: service.name) shop.services)))
    (assign "FAULT_APIS" "str" (faultApis "shop"))
    # What this layout needs off loopback on `shop` (nodes/shop.nix): the four services on
    # every address (scraped from `monitor`, called on 127.0.0.1 by each other and the
    # traffic generator), PostgreSQL on every address for `monitor`'s Grafana
    # (grafanaReadOnly.allowedNetworks sets listen_addresses = "*"), dhcpcd's leases.
    (assign "SHOP_LISTENER_ALLOWS" "str" (flags "--allow" (map (port: "0.0.0.0:${toString port}/tcp") servicePorts
          ++ ["0.0.0.0:${toString shop.ports.postgresql}/tcp" "[::]:${toString shop.ports.postgresql}/tcp" "0.0.0.0:68/udp" "[::]:546/udp"])))
    (assign "SCENARIO" "str" outageScenario)
    (assign "FIRING_RULES" "str" (words (builtins.attrValues firingPerDatasource)))
  ];
}
