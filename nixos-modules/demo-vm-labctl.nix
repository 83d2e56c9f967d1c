# `nix run .#labctl`: labctl aimed at the `nix run` VM unless told otherwise. Its URLs are the
# forwarded ports (moved by $ALERTLAB_PORT_OFFSET as `nix run` moves them), so scenarios go to
# the VM's scenario control endpoint (`--scenario-url`) with the VM's published token, and
# Grafana takes the VM's demo password. A variable the user set wins.
{
  pkgs,
  labctl,
}: let
  demo = import ./lib/demo-vm.nix;
  offsetVariable = demo.portOffsetVariable;
in
  pkgs.writeShellApplication {
    name = "labctl";
    text = ''
      offset="''${${offsetVariable}:-0}"
      case "$offset" in
        "" | *[!0-9]*)
          echo "labctl: ${offsetVariable} must be a whole number (the offset nix run was given), got '$offset'" >&2
          exit 2
          ;;
      esac
      ${builtins.concatStringsSep "" (map (forward: ''
          export ${forward.labctlVariable}="''${${forward.labctlVariable}:-http://127.0.0.1:$((${toString forward.port} + offset))}"
        '')
        demo.forwarded)}
      export LABCTL_SCENARIO_TOKEN_FILE="''${LABCTL_SCENARIO_TOKEN_FILE:-${pkgs.writeText "alertlab-demo-scenario-token" demo.scenarioToken}}"
      if [ -z "''${LABCTL_GRAFANA_PASSWORD_FILE:-}" ] && [ -z "''${LABCTL_GRAFANA_PASSWORD:-}" ]; then
        export LABCTL_GRAFANA_PASSWORD_FILE=${pkgs.writeText "alertlab-demo-grafana-password" demo.grafanaAdminPassword}
      fi
      exec ${pkgs.lib.getExe labctl} "$@"
    '';
  }
