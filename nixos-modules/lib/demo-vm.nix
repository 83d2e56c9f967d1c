# The `nix run` VM (apps.default, ../demo-vm.nix): a throwaway lab on the user's own machine,
# its ports forwarded to 127.0.0.1 only. Its Grafana password and fault token are fixed and
# published here on purpose, so that the browser and `nix run .#labctl` work without reading
# anything out of the VM; they are demo values for this local VM only, never for a deployed
# lab (whose secrets are generated or given as files). Only builtins are used.
let
  shop = import ./.;
in {
  hostName = "alertlab-demo";
  grafanaAdminPassword = "alertlab-demo";
  faultToken = "alertlab-demo-fault-token";
  # Inside the VM; root-only copies made at boot (environment.etc with mode 0400).
  secretsDir = "/etc/alertlab-demo";
  memorySize = 4096;
  cores = 2;
  # Forwarded from 127.0.0.1 on the host to the same port in the VM.
  forwardedPorts =
    [shop.ports.grafana shop.ports.prometheus shop.ports.loki]
    ++ map (service: service.port) shop.services;
}
