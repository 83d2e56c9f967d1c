# apps.default (`nix run`): boots the lab VM of demo-vm.nix in the background, prints where
# everything is, and on Ctrl-C powers the VM off cleanly (the ACPI power button, through
# QEMU's monitor socket; a second Ctrl-C, or two minutes without power-off, stops QEMU).
# The VM's disk stays in $XDG_CACHE_HOME/alertlab (never in the current directory), so its
# data survives a restart; delete the file for a fresh lab.
{
  pkgs,
  vm,
}: let
  data = import ./lib;
  demo = import ./lib/demo-vm.nix;
  port = name: toString data.ports.${name};
  servicePort = name: toString (builtins.head (builtins.filter (s: s.name == name) data.services)).port;
in
  pkgs.writeShellApplication {
    name = "alertlab-demo";
    runtimeInputs = [pkgs.coreutils pkgs.curl pkgs.socat pkgs.util-linux];
    text = ''
      state="''${ALERTLAB_DEMO_DIR:-''${XDG_CACHE_HOME:-$HOME/.cache}/alertlab}"
      mkdir -p "$state"
      export NIX_DISK_IMAGE="''${NIX_DISK_IMAGE:-$state/${demo.hostName}.qcow2}"
      console="$state/console.log"
      monitor="$state/monitor.sock"
      rm -f "$monitor"
      : >"$console"
      # The serial console to a file, QEMU's monitor on a socket (for the clean power-off).
      export QEMU_OPTS="''${QEMU_OPTS:-} -serial file:$console -monitor unix:$monitor,server=on,wait=off"

      cat <<EOF
      alertlab: booting the lab VM (${toString demo.memorySize} MiB, ${toString demo.cores} cores; Grafana answers after a minute or two)

        Grafana      http://localhost:${port "grafana"}   user admin, password ${demo.grafanaAdminPassword}
        Prometheus   http://localhost:${port "prometheus"}
        Loki         http://localhost:${port "loki"}      (API only: /ready, /loki/api/v1/...; browse logs in Grafana)
        shop         API http://localhost:${servicePort "api"}  frontend http://localhost:${servicePort "frontend"}  payment :${servicePort "payment"}  inventory :${servicePort "inventory"}

        Break something:  nix run .#labctl -- scenario start payment-outage --for 5m
                          nix run .#labctl -- scenario list    (all but service-down, which
                                                               stops a unit inside the VM, work from here)
        Watch the rules:  nix run .#labctl -- alerts

        The password and the fault token are fixed demo values of this local VM only; its
        ports are forwarded from 127.0.0.1 only.
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
          if curl -sf -o /dev/null "http://127.0.0.1:${port "grafana"}/api/health"; then
            echo "alertlab: the lab is up: http://localhost:${port "grafana"} (admin / ${demo.grafanaAdminPassword})"
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
