# vm-tests/hardening.nix: the lab profile on one VM (generated secrets, services listening on
# every address), checked for what an attacker on the host or the network could reach. Every
# check is one labctl audit, tested in services/labctl.
start_all()
for unit in UNITS:
    machine.wait_for_unit(unit)
for port in SERVICE_PORTS:
    machine.wait_for_open_port(port)

with subtest("systemd-analyze security: each unit at or below its level (vm-tests/exposure.json)"):
    machine.succeed(f"labctl audit exposure {EXPOSURE}")

with subtest("Grafana's PostgreSQL role reads what the rules need, no person data, and cannot write"):
    machine.succeed(f"labctl {READ_ONLY_ROLE} audit db-role")

with subtest("no secret is in any file of the system's closure"):
    # Every generated secret exists: the lab's directory and the shop module's tokens.
    for secret in SECRET_FILES:
        machine.succeed(f"test -s {secret}")
    machine.succeed(
        f"labctl audit store-secrets --closure /run/current-system --secrets-dir {SECRETS_DIR} {MODULE_SECRETS} {STORE_CONTROLS}",
        timeout=1800,
    )

with subtest("the fault API refuses a client on the network without the token, a web page and a foreign Host even with it, and accepts the token"):
    machine.succeed(f"labctl --fault-token-file {SECRETS_DIR}/fault-token audit fault-api {FAULT_APIS}")

with subtest("nothing listens off loopback but what the layout needs"):
    machine.succeed(f"labctl audit listeners {LISTENER_ALLOWS}")
