# apps.default (`nix run`) and apps.alloy (`nix run .#alloy`): boots the lab VM of
# demo-vm.nix (demo-vm-alloy.nix) in the background, prints where everything is, and on
# Ctrl-C powers the VM off cleanly (the ACPI power button, through QEMU's monitor socket; a
# second Ctrl-C, or two minutes without power-off, stops QEMU). Before booting it checks that
# every port it forwards is free on 127.0.0.1 and names the taken ones; $ALERTLAB_PORT_OFFSET
# moves them all (QEMU's forwards are given at start, in QEMU_NET_OPTS, so they can move). The
# VM's disk stays in $XDG_CACHE_HOME/alertlab (never in the current directory), so its data
# survives a restart; delete the file for a fresh lab. Each log shipper has a disk of its own:
# a shipper started on the other's disk would find logs it has no read position for and ship
# them to Loki a second time.
{
  pkgs,
  vm,
  # The VM's log shipper (services.alertlab.observability.logShipper): "promtail" or "alloy".
  shipper ? "promtail",
}: let
  demo = import ./lib/demo-vm.nix;
  # The disk, console log and monitor socket of this VM: the Promtail VM's keep the names they
  # always had.
  stateName = name:
    if shipper == "promtail"
    then name
    else "${name}-${shipper}";
  shipperName =
    if shipper == "promtail"
    then "Promtail"
    else "Grafana Alloy";
  offsetVariable = demo.portOffsetVariable;
  # The largest offset that keeps every forwarded port a port.
  maxOffset =
    65535
    - builtins.foldl' (a: b:
      if a > b
      then a
      else b)
    0 (map (forward: forward.port) demo.forwarded);
  # `port_<guest port>` shell variables: the host-side port of each forward.
  variable = forward: "port_${toString forward.port}";
  # The host-side port of the forward named `name`, as the script has it.
  hostPort = name: "$" + variable (builtins.head (builtins.filter (forward: forward.name == name) demo.forwarded));
in
  pkgs.writeShellApplication {
    name = "alertlab-demo";
    runtimeInputs = [pkgs.coreutils pkgs.curl pkgs.socat pkgs.util-linux];
    text = ''
      offset="''${${offsetVariable}:-0}"
      case "$offset" in
        "" | *[!0-9]*)
          echo "alertlab: ${offsetVariable} must be a whole number (moves every forwarded port by it), got '$offset'" >&2
          exit 2
          ;;
      esac
      if [ "$offset" -gt ${toString maxOffset} ]; then
        echo "alertlab: ${offsetVariable} must be at most ${toString maxOffset}, got $offset" >&2
        exit 2
      fi

      # Every forwarded port must be free on 127.0.0.1, or QEMU stops at start with a bare
      # status. A port that answers a connection is taken.
      taken=()
      forwards=""
      ${builtins.concatStringsSep "" (map (forward: ''
          ${variable forward}=$((${toString forward.port} + offset))
          if (: <>"/dev/tcp/127.0.0.1/${"$"}${variable forward}") 2>/dev/null; then
            taken+=("127.0.0.1:${"$"}${variable forward} (${forward.name})")
          fi
          forwards+="hostfwd=tcp:127.0.0.1:${"$"}${variable forward}-:${toString forward.port},"
        '')
        demo.forwarded)}
      if [ "''${#taken[@]}" -gt 0 ]; then
        echo "alertlab: the lab VM cannot start: these ports are in use on this machine:" >&2
        for port in "''${taken[@]}"; do
          echo "  $port" >&2
        done
        echo "Stop what uses them, or move every forwarded port with ${offsetVariable}, e.g." >&2
        echo "  ${offsetVariable}=10000 nix run     (Grafana then on http://localhost:$((${toString (builtins.head demo.forwarded).port} + 10000)))" >&2
        echo "and give nix run .#labctl the same ${offsetVariable}." >&2
        exit 1
      fi
      export QEMU_NET_OPTS="''${forwards%,}''${QEMU_NET_OPTS:+,$QEMU_NET_OPTS}"

      state="''${ALERTLAB_DEMO_DIR:-''${XDG_CACHE_HOME:-$HOME/.cache}/alertlab}"
      mkdir -p "$state"
      export NIX_DISK_IMAGE="''${NIX_DISK_IMAGE:-$state/${stateName demo.hostName}.qcow2}"
      console="$state/${stateName "console"}.log"
      monitor="$state/${stateName "monitor"}.sock"
      rm -f "$monitor"
      : >"$console"
      # The serial console to a file, QEMU's monitor on a socket (for the clean power-off).
      export QEMU_OPTS="''${QEMU_OPTS:-} -serial file:$console -monitor unix:$monitor,server=on,wait=off"

      grafana="http://localhost:${hostPort "Grafana"}"
      offset_note=""
      if [ "$offset" != 0 ]; then
        offset_note="    (${offsetVariable}=$offset: give nix run .#labctl the same)"
      fi
      cat <<EOF
      alertlab: booting the lab VM (${toString demo.memorySize} MiB, ${toString demo.cores} cores, ${shipperName} shipping the logs; Grafana answers after a minute or two)

        Grafana      $grafana   user admin, password ${demo.grafanaAdminPassword}
        Prometheus   http://localhost:${hostPort "Prometheus"}
        Loki         http://localhost:${hostPort "Loki"}      (API only: /ready, /loki/api/v1/...; browse logs in Grafana)
        shop         API http://localhost:${hostPort "the API"}  frontend http://localhost:${hostPort "the frontend"}

        Break something:  nix run .#labctl -- scenario start payment-outage --for 5m
                          nix run .#labctl -- scenario list    (every scenario works from here:
                                                               the VM runs them for labctl)
        Watch the rules:  nix run .#labctl -- alerts
      $offset_note
        The Grafana password and the scenario token are fixed demo values of this local VM
        only; its ports are forwarded from 127.0.0.1 only.
        Console log: $console
        Disk (the lab's data): $NIX_DISK_IMAGE (delete it for a fresh lab)
        Stop: Ctrl-C (clean power-off; Ctrl-C again stops QEMU at once)
      EOF

      # Its own session: the terminal's Ctrl-C reaches this script, not QEMU.
      setsid ${pkgs.lib.getExe vm} </dev/null &
      vm=$!

      stopping=0
      deadline=0
      # shellcheck disable=SC2317 # called by the trap below
      stop() {
        if [ "$stopping" = 1 ]; then
          echo "alertlab: stopping QEMU at once"
          kill "$vm" 2>/dev/null || true
          return
        fi
        stopping=1
        deadline=$((SECONDS + 120))
        echo "alertlab: powering the VM off (Ctrl-C again to stop QEMU at once)"
        if ! echo system_powerdown | socat - "UNIX-CONNECT:$monitor" >/dev/null 2>&1; then
          kill "$vm" 2>/dev/null || true
        fi
      }
      trap stop INT TERM

      (
        while kill -0 "$vm" 2>/dev/null; do
          if curl -sf -o /dev/null "$grafana/api/health"; then
            echo "alertlab: the lab is up: $grafana (admin / ${demo.grafanaAdminPassword})"
            exit 0
          fi
          sleep 3
        done
      ) &

      status=0
      while kill -0 "$vm" 2>/dev/null; do
        if [ "$stopping" = 1 ]; then
          if [ "$SECONDS" -ge "$deadline" ]; then
            echo "alertlab: the VM did not power off within two minutes; stopping QEMU"
            kill "$vm" 2>/dev/null || true
          fi
          sleep 1
        elif wait "$vm"; then
          status=0
        else
          status=$?
        fi
      done
      if [ "$stopping" = 1 ]; then
        echo "alertlab: the VM has stopped"
        exit 0
      fi
      echo "alertlab: QEMU exited (status $status); see $console" >&2
      exit "$status"
    '';
  }
