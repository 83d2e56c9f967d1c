# vm-tests/alerts.nix: the whole lab on one VM in the fast profile. The alerting contract is
# checked by `labctl verify` (tested in services/labctl); this script boots the lab, checks
# that Grafana sees its data sources and rules, runs verify, keeps its report, and checks that
# no log line was lost on the way to Loki.
import json
import time
from collections.abc import Callable

AUTH = f"-u admin:$(cat {GRAFANA_PASSWORD_FILE})"


def poll(what: Callable[[], str], check: Callable[[], bool], timeout: int) -> None:
    """Calls check every 2 s until it returns True; fails with what() after timeout s."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what()}"
        time.sleep(2)


def datasource_ok(uid: str) -> bool:
    status, body = machine.execute(
        f"curl -sS {AUTH} {GRAFANA}/api/datasources/uid/{uid}/health"
    )
    return status == 0 and body.startswith("{") and json.loads(body).get("status") == "OK"


start_all()

with subtest("every unit and port of the lab is up"):
    for unit in UNITS:
        machine.wait_for_unit(unit)
    for port in PORTS:
        machine.wait_for_open_port(port)
    machine.wait_until_succeeds(f"curl -sf {LOKI}/ready | grep -q ready", timeout=300)
    machine.wait_until_succeeds(f"curl -sf {GRAFANA}/api/health", timeout=300)

with subtest("each data source is healthy through Grafana's API"):
    for uid in DATASOURCE_UIDS:
        poll(lambda: f"data source {uid} healthy", lambda: datasource_ok(uid), 180)

with subtest("every rule of grafana/alert-rules.json is loaded"):
    rules = json.loads(
        machine.succeed(f"curl -sSf {AUTH} {GRAFANA}/api/v1/provisioning/alert-rules")
    )
    missing = sorted(set(RULE_UIDS) - {rule["uid"] for rule in rules})
    assert not missing, f"rules not loaded by Grafana: {missing}"

with subtest("labctl verify: every rule fires, notifies and resolves"):
    status, output = machine.execute(
        f"labctl --grafana-password-file {GRAFANA_PASSWORD_FILE}"
        " verify --profile fast --report /tmp/report.json 2>&1",
        timeout=3000,
    )
    machine.log(output)
    # Kept whatever verify concluded: $out/report.json.
    if machine.execute("test -s /tmp/report.json")[0] == 0:
        machine.copy_from_vm("/tmp/report.json", "")
    assert status == 0, f"labctl verify failed (exit {status}); its table is above"

with subtest("no log line was lost between the services and Loki"):
    # Nothing writes to the log files once the traffic and the services are stopped.
    machine.succeed("systemctl stop " + " ".join(STOP_UNITS))
    written = {
        service: int(machine.succeed(f"wc -l < {path}"))
        for service, path in LOG_FILES.items()
    }
    query = "query=sum by (service) (count_over_time({job=\"alertlab\"}[2h]))"
    shipped: dict[str, int] = {}

    def all_shipped() -> bool:
        answer = json.loads(
            machine.succeed(f"curl -sSfG {LOKI}/loki/api/v1/query --data-urlencode '{query}'")
        )
        shipped.clear()
        for sample in answer["data"]["result"]:
            shipped[sample["metric"]["service"]] = int(float(sample["value"][1]))
        return all(shipped.get(service) == lines for service, lines in written.items())

    # Promtail ships in batches: poll until every count matches, or fail with both.
    poll(lambda: f"Loki has the lines written {written}; it has {shipped}", all_shipped, 180)
    machine.log(f"log lines written and found in Loki, per service: {written}")
