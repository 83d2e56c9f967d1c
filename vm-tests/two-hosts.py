# vm-tests/two-hosts.nix: the shop (services, PostgreSQL, Promtail) on `shop`, the stack
# (Prometheus, Loki, Grafana, the sinks) on `monitor`. Proves scrape, log push and SQL across
# the network, and that one scenario makes a rule of each data source fire. Every check is one
# labctl call, tested in services/labctl.
start_all()
for unit in SHOP_UNITS:
    shop.wait_for_unit(unit)
for unit in MONITOR_UNITS:
    monitor.wait_for_unit(unit)
monitor.wait_until_succeeds(f"curl -sf {LOKI}/ready", timeout=300)
monitor.wait_until_succeeds(f"curl -sf {GRAFANA}/api/health", timeout=300)

with subtest("Prometheus on monitor scrapes the four services on shop"):
    monitor.succeed(f"{LABCTL_REMOTE} audit scrape --wait 3m", timeout=300)

with subtest("Promtail on shop pushes every service's log lines to Loki on monitor"):
    monitor.succeed(f"{LABCTL_REMOTE} audit log-lines {SERVICES} --wait 3m", timeout=300)

with subtest("Grafana on monitor reaches every data source, PostgreSQL on shop included"):
    monitor.succeed(f"{LABCTL_REMOTE} audit grafana --wait 3m", timeout=300)

with subtest("the fault API on shop refuses monitor without the token, a web page and a foreign Host even with it, and accepts the token"):
    monitor.succeed(f"{LABCTL_REMOTE} audit fault-api {FAULT_APIS}")

with subtest("nothing on shop listens off loopback but what the two-host layout needs"):
    shop.succeed(f"labctl audit listeners {SHOP_LISTENER_ALLOWS}")

with subtest(f"{SCENARIO}: a rule of each data source fires"):
    monitor.succeed(f"{LABCTL_REMOTE} scenario start {SCENARIO} --for 10m --detach")
    monitor.succeed(f"{LABCTL_REMOTE} audit firing {FIRING_RULES} --within 7m", timeout=600)
    monitor.succeed(f"{LABCTL_REMOTE} scenario stop {SCENARIO}")
