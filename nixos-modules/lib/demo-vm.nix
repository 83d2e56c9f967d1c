# The `nix run` VM (apps.default, ../demo-vm.nix): a throwaway lab on the user's own machine,
# a few of its ports forwarded to 127.0.0.1 only. Its Grafana password and the token of its
# scenario control endpoint are fixed and published here on purpose, so that the browser and
# `nix run .#labctl` work without reading anything out of the VM; they are demo values for
# this local VM only, never for a deployed lab (whose secrets are generated or given as
# files). The fault API's token is generated in the VM and never leaves it: the host starts
# scenarios through the control endpoint, which runs them inside. Only builtins are used.
let
  shop = import ./.;
  servicePort = name: (builtins.head (builtins.filter (service: service.name == name) shop.services)).port;
in {
  hostName = "alertlab-demo";
  grafanaAdminPassword = "alertlab-demo";
  scenarioToken = "alertlab-demo-scenario-token";
  # Inside the VM; root-only copies made at boot (environment.etc with mode 0400).
  secretsDir = "/etc/alertlab-demo";
  memorySize = 4096;
  cores = 2;
  # Moves every forwarded port on the host by the same number (for `nix run` and
  # `nix run .#labctl` alike), when the usual ones are taken.
  portOffsetVariable = "ALERTLAB_PORT_OFFSET";
  # Forwarded from 127.0.0.1 on the host (port + offset) to the same port in the VM, each
  # with the labctl variable that `nix run .#labctl` points at it. The payment and inventory
  # services, the fault API and the sinks stay inside the VM.
  forwarded = [
    {
      name = "Grafana";
      port = shop.ports.grafana;
      labctlVariable = "LABCTL_GRAFANA_URL";
    }
    {
      name = "Prometheus";
      port = shop.ports.prometheus;
      labctlVariable = "LABCTL_PROMETHEUS_URL";
    }
    {
      name = "Loki";
      port = shop.ports.loki;
      labctlVariable = "LABCTL_LOKI_URL";
    }
    {
      name = "the API";
      port = servicePort "api";
      labctlVariable = "LABCTL_API_URL";
    }
    {
      name = "the frontend";
      port = servicePort "frontend";
      labctlVariable = "LABCTL_FRONTEND_URL";
    }
    {
      name = "scenario control";
      port = shop.ports.scenarioControl;
      labctlVariable = "LABCTL_SCENARIO_URL";
    }
  ];
}
