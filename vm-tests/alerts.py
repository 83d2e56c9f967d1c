# vm-tests/alerts.nix and alerts-alloy.nix: the whole lab on one VM in the fast profile. Every
# check is one labctl call, tested in services/labctl: this script boots the lab, waits for it,
# and runs them.
import os


def keep(path: str, name: str) -> None:
    # Keeps a file of the VM as $out/NAME whatever the check concluded (written here rather
    # than copied, which needs no copy method of a particular driver version; the interactive
    # driver has no $out, so it lands in the current directory).
    if machine.execute(f"test -s {path}")[0] == 0:
        with open(os.path.join(os.environ.get("out", "."), name), "w") as kept:
            kept.write(machine.succeed(f"cat {path}"))


start_all()

with subtest("every unit and port of the lab is up"):
    for unit in UNITS:
        machine.wait_for_unit(unit)
    for port in PORTS:
        machine.wait_for_open_port(port)
    machine.wait_until_succeeds(f"curl -sf {LOKI}/ready", timeout=300)
    machine.wait_until_succeeds(f"curl -sf {GRAFANA}/api/health", timeout=300)

with subtest("Grafana reaches each data source and has loaded every rule"):
    machine.succeed(f"{LABCTL} audit grafana --wait 3m", timeout=300)

with subtest("every service's log rotates while the shipper tails it"):
    # The shipper has been shipping each file before it is rotated.
    machine.succeed(f"{LABCTL} audit log-lines {SERVICES} --wait 3m", timeout=300)
    # ExecReload sends SIGHUP: each service moves <name>.log to <name>.log.1 and goes on.
    machine.succeed(f"systemctl reload {SERVICE_UNITS}")
    for rotated in ROTATED_FILES:
        machine.wait_until_succeeds(f"test -s {rotated}", timeout=60)

with subtest("labctl verify: every rule fires, notifies and resolves"):
    status, output = machine.execute(
        f"{LABCTL} verify --profile fast {VERIFY_PHASES} --report /tmp/report.json 2>&1",
        timeout=3000,
    )
    machine.log(output)
    keep("/tmp/report.json", "report.json")
    assert status == 0, f"labctl verify failed (exit {status}); its table is above"

with subtest("each unit's peak memory stays under its limit"):
    # Before anything stops: a stopped unit's cgroup, and its figures, are gone.
    status, output = machine.execute(
        f"labctl audit memory {MEMORY} --json /tmp/memory.json 2>&1"
    )
    machine.log(output)
    keep("/tmp/memory.json", "memory.json")
    assert status == 0, f"labctl audit memory failed (exit {status}); its table is above"

with subtest("no log line was lost between the services and Loki, across the rotation"):
    # Nothing writes to the log files once the traffic and the services are stopped.
    machine.succeed(f"systemctl stop {STOP_UNITS}")
    machine.succeed(
        f"{LABCTL} audit log-lines --with-rotated {LOG_FILES} --wait 3m", timeout=300
    )
