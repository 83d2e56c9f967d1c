# vm-tests/hardening.nix: the lab profile on one VM (generated secrets, services listening on
# every address), checked for what an attacker on the host or the network could reach.
import re

# systemd-analyze's scale: 0 perfect ... 10 unsafe; "OK" is 1.0 to 4.9. Our units measure
# 1.5 (systemd 252, offline analysis of the unit as the module writes it); what remains is
# network access (AF_INET, no PrivateNetwork / IPAddressDeny), which a network service
# needs, no PrivateUsers / PrivateMounts / RootDirectory, and the @resources system calls.
# 2.0 leaves room for the checks newer systemd versions add.
MAX_EXPOSURE = 2.0

start_all()
for unit in UNITS:
    machine.wait_for_unit(unit)
for port in SERVICE_PORTS.values():
    machine.wait_for_open_port(port)

with subtest(f"systemd-analyze security: each shop unit at or below {MAX_EXPOSURE}"):
    levels: dict[str, float] = {}
    for unit in HARDENED_UNITS:
        report = machine.succeed(f"SYSTEMD_COLORS=0 systemd-analyze security {unit} 2>&1")
        found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", report)
        assert found, f"no overall exposure level for {unit} in:\n{report}"
        levels[unit] = float(found.group(1))
    machine.log(f"exposure levels: {levels}")
    too_exposed = {unit: level for unit, level in levels.items() if level > MAX_EXPOSURE}
    assert not too_exposed, f"exposure above {MAX_EXPOSURE}: {too_exposed}"

with subtest("Grafana's PostgreSQL role reads but cannot write"):
    psql = (
        f"PGPASSWORD=$(cat {SECRETS_DIR}/grafana-ro-password)"
        f" psql -h 127.0.0.1 -U {READ_ONLY_ROLE} -d {DATABASE} -v ON_ERROR_STOP=1 -At"
    )
    # It logs in and reads (so the failures below are about privileges, not the login).
    assert int(machine.succeed(f"{psql} -c 'SELECT count(*) FROM products'")) > 0
    for statement in [
        "INSERT INTO orders DEFAULT VALUES",
        "UPDATE products SET stock_level = 0",
        "DELETE FROM login_attempts",
        "CREATE TABLE intruder (id int)",
    ]:
        refused = machine.fail(f"{psql} -c '{statement}' 2>&1")
        assert "permission denied" in refused, f"{statement}: {refused}"

with subtest("no secret is in the Nix store paths of the system"):
    names = sorted(machine.succeed(f"ls {SECRETS_DIR}").split())
    assert names == sorted(SECRET_NAMES), f"secrets in {SECRETS_DIR}: {names}"
    patterns = []
    for name in SECRET_NAMES:
        value = machine.succeed(f"cat {SECRETS_DIR}/{name}").strip()
        assert len(value) >= 16, f"{name} is too short to be a generated secret"
        patterns.append(value)
    machine.succeed(f"printf '%s\\n' {' '.join(patterns)} > /tmp/secret-patterns")
    # The system closure, without the packages: every path below 4 MiB (unit files,
    # /etc, Grafana's config.ini and provisioning, the Prometheus, Loki, Promtail and
    # PostgreSQL configurations, our SQL script, wrappers).
    machine.succeed(
        "nix-store --query --requisites /run/current-system > /tmp/paths",
        "xargs nix-store --query --size < /tmp/paths > /tmp/sizes",
        "paste /tmp/sizes /tmp/paths | awk '$1 <= 4194304 { print $2 }' > /tmp/small-paths",
    )
    searched = int(machine.succeed("wc -l < /tmp/small-paths"))
    machine.log(f"searching {searched} store paths for the secrets")

    def store_files_containing(patterns_file: str) -> list[str]:
        status, hits = machine.execute(
            f"xargs -r -a /tmp/small-paths grep -rlsF -f {patterns_file} -- ; true"
        )
        assert status == 0
        return hits.split()

    # The search reaches the configuration: the role's name (no secret) is found there.
    machine.succeed(f"echo {READ_ONLY_ROLE} > /tmp/control-pattern")
    assert any(
        path.endswith(".yaml") for path in store_files_containing("/tmp/control-pattern")
    ), "the search does not reach Grafana's provisioning files"
    leaked = store_files_containing("/tmp/secret-patterns")
    assert not leaked, f"secrets found in the Nix store: {leaked}"

with subtest("the fault API refuses a non-loopback client without the token"):
    # The VM's own address on the test network: the services see it as the peer address,
    # which is not loopback (a second VM would only add a boot; the firewall is not what
    # is tested here, the services' access check is).
    token = f"$(cat {SECRETS_DIR}/fault-token)"
    body = '{"kind": "latency", "value": 1, "duration_seconds": 1}'
    for service, port in SERVICE_PORTS.items():
        faults = f"http://{OWN_ADDRESS}:{port}/admin/faults"
        curl = "curl -s -o /dev/null -w '%{http_code}'"
        for request in [faults, f"-X POST -H 'content-type: application/json' -d '{body}' {faults}"]:
            code = machine.succeed(f"{curl} {request}")
            assert code == "401", f"{service}: {request} without the token answered {code}"
        code = machine.succeed(f"{curl} -H \"Authorization: Bearer {token}\" {faults}")
        assert code == "200", f"{service}: with the token answered {code}"
        code = machine.succeed(f"{curl} http://127.0.0.1:{port}/admin/faults")
        assert code == "200", f"{service}: from loopback answered {code}"
