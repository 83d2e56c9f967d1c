# vm-tests/two-hosts.nix: the shop (services, PostgreSQL, Promtail) on `shop`, the stack
# (Prometheus, Loki, Grafana, the sinks) on `monitor`. Proves scrape, log push and SQL across
# the network, and that one scenario makes a rule of each data source fire.
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


def monitor_json(command: str) -> dict:
    return json.loads(monitor.succeed(command))


start_all()
for unit in SHOP_UNITS:
    shop.wait_for_unit(unit)
for unit in MONITOR_UNITS:
    monitor.wait_for_unit(unit)
monitor.wait_until_succeeds(f"curl -sf {LOKI}/ready | grep -q ready", timeout=300)
monitor.wait_until_succeeds(f"curl -sf {GRAFANA}/api/health", timeout=300)

with subtest("Prometheus on monitor scrapes the four services on shop"):
    up: dict[str, str] = {}

    def all_up() -> bool:
        answer = monitor_json(
            f"curl -sSfG {PROMETHEUS}/api/v1/query --data-urlencode 'query=up{{job=~\"shop-.+\"}}'"
        )
        up.clear()
        for sample in answer["data"]["result"]:
            up[sample["metric"]["service"]] = sample["value"][1]
        return up == {service: "1" for service in SERVICE_PORTS}

    poll(lambda: f"every shop target up, got {up}", all_up, 180)

with subtest("Promtail on shop pushes every service's log lines to Loki on monitor"):
    lines: dict[str, int] = {}

    def all_pushed() -> bool:
        query = "query=sum by (service) (count_over_time({job=\"alertlab\"}[1h]))"
        answer = monitor_json(f"curl -sSfG {LOKI}/loki/api/v1/query --data-urlencode '{query}'")
        lines.clear()
        for sample in answer["data"]["result"]:
            lines[sample["metric"]["service"]] = int(float(sample["value"][1]))
        return all(lines.get(service, 0) > 0 for service in SERVICE_PORTS)

    poll(lambda: f"log lines from every service, got {lines}", all_pushed, 180)

with subtest("Grafana on monitor reaches every data source, PostgreSQL on shop included"):
    for uid in DATASOURCE_UIDS:

        def healthy() -> bool:
            status, body = monitor.execute(
                f"curl -sS {AUTH} {GRAFANA}/api/datasources/uid/{uid}/health"
            )
            return status == 0 and body.startswith("{") and json.loads(body).get("status") == "OK"

        poll(lambda: f"data source {uid} healthy", healthy, 180)

with subtest("the fault API on shop refuses monitor without the token"):
    code = monitor.succeed(
        f"curl -s -o /dev/null -w '%{{http_code}}' http://shop:{SERVICE_PORTS['payment']}/admin/faults"
    )
    assert code == "401", f"the payment service answered {code} to monitor without the token"

with subtest(f"{SCENARIO}: a rule of each data source fires"):
    monitor.succeed(f"{LABCTL_REMOTE} labctl scenario start {SCENARIO} --for 10m --detach")
    states: dict[str, str] = {}

    def all_firing() -> bool:
        report = monitor_json(f"{LABCTL_REMOTE} labctl alerts --json")
        by_uid = {rule.get("uid"): rule for rule in report["rules"]}
        states.clear()
        for datasource, uid in FIRING_PER_DATASOURCE.items():
            rule = by_uid.get(uid, {})
            states[f"{datasource}: {uid}"] = f"{rule.get('state')} ({rule.get('health')})"
        return all(by_uid.get(uid, {}).get("state") == "firing" for uid in FIRING_PER_DATASOURCE.values())

    poll(lambda: f"firing: {states}", all_firing, 420)
    monitor.log(f"firing across hosts: {states}")
    monitor.succeed(f"{LABCTL_REMOTE} labctl scenario stop {SCENARIO}")
