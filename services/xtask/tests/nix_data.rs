//! The flake's pins, and the builtins-only data functions of `nixos-modules/lib`,
//! evaluated with `nix-instantiate --eval --strict --json` and checked (the generated
//! prometheus.yml also with `promtool check config`).

mod common;

use std::{collections::BTreeMap, fs};

use common::{eval_json, run, scratch_dir, shop, stderr, stdout, PROMTOOL};
use serde_json::{json, Value};
use xtask::repo_root;

/// The pins of `../shared/DESIGN.md` ("Nix facts (verified)").
struct Pin {
    input: &'static str,
    owner: &'static str,
    repo: &'static str,
    reference: Option<&'static str>,
    rev: &'static str,
    nar_hash: &'static str,
    last_modified: u64,
}

const PINS: [Pin; 3] = [
    Pin {
        input: "nixpkgs",
        owner: "NixOS",
        repo: "nixpkgs",
        reference: Some("nixos-26.05"),
        rev: "531670d871c0e29724a02f3cbcac170adc65b58c",
        nar_hash: "sha256-ODZkEK9Gy50yg6h98u7KkitZ3oc/uuTFK00bh1CRdNA=",
        last_modified: 1785734586,
    },
    Pin {
        input: "crane",
        owner: "ipetkov",
        repo: "crane",
        reference: None,
        rev: "b8d87f76ea4e4b6f30f2e6eaf3fbb60ff7d87167",
        nar_hash: "sha256-H++/2dMt+5+tErKU+t5z6c4Xedvj9w+UPQYrpygwIPw=",
        last_modified: 1785631643,
    },
    Pin {
        input: "nixpkgs-promtail",
        owner: "NixOS",
        repo: "nixpkgs",
        reference: Some("nixos-25.11"),
        rev: "b6018f87da91d19d0ab4cf979885689b469cdd41",
        nar_hash: "sha256-twXPFqFsrrY5r28Zh7Homgcp2gUMBgQ6WDS98Q/3xFI=",
        last_modified: 1782847189,
    },
];

/// Ports of DESIGN.md's component table.
const SERVICE_PORTS: [(&str, u64); 4] = [
    ("api", 8080),
    ("frontend", 8081),
    ("payment", 8082),
    ("inventory", 8083),
];
const PROMETHEUS_PORT: u64 = 9090;

/// Rule evaluation intervals DESIGN.md names for the two timing profiles, and the scrape
/// intervals this lab defines for them (a scrape per evaluation at least).
const PROFILES: [(&str, &str, &str); 2] = [("demo", "30s", "15s"), ("fast", "10s", "5s")];

fn read_lock() -> Value {
    let text = fs::read_to_string(repo_root().join("flake.lock")).expect("flake.lock exists");
    serde_json::from_str(&text).expect("flake.lock is valid JSON")
}

#[test]
fn flake_lock_pins_exactly_the_design_revisions() {
    let lock = read_lock();
    assert_eq!(lock["version"], 7);
    assert_eq!(lock["root"], "root");
    let nodes = lock["nodes"].as_object().expect("nodes");
    let mut expected_inputs = BTreeMap::new();
    for pin in &PINS {
        expected_inputs.insert(pin.input.to_string(), json!(pin.input));
        let node = &nodes[pin.input];
        let mut original = json!({"type": "github", "owner": pin.owner, "repo": pin.repo});
        if let Some(reference) = pin.reference {
            original["ref"] = json!(reference);
        }
        assert_eq!(node["original"], original, "{}: original", pin.input);
        assert_eq!(
            node["locked"],
            json!({
                "type": "github",
                "owner": pin.owner,
                "repo": pin.repo,
                "rev": pin.rev,
                "narHash": pin.nar_hash,
                "lastModified": pin.last_modified,
            }),
            "{}: locked",
            pin.input
        );
        assert!(
            node.get("inputs").is_none(),
            "{} has no inputs of its own",
            pin.input
        );
    }
    assert_eq!(nodes["root"], json!({ "inputs": expected_inputs }));
    assert_eq!(nodes.len(), PINS.len() + 1, "no other inputs are locked");
}

#[test]
fn flake_lock_matches_design_md_when_present() {
    let design = repo_root().join("../shared/DESIGN.md");
    let Ok(text) = fs::read_to_string(&design) else {
        eprintln!(
            "note: {} not found; the pins were checked against this test's copy only",
            design.display()
        );
        return;
    };
    for pin in &PINS {
        for value in [pin.rev, pin.nar_hash, &pin.last_modified.to_string()] {
            assert!(
                text.contains(value),
                "DESIGN.md no longer names {value} ({})",
                pin.input
            );
        }
    }
}

#[test]
fn flake_inputs_are_the_locked_branches() {
    let inputs = eval_json("{ root }: (import (root + \"/flake.nix\")).inputs");
    assert_eq!(
        inputs,
        json!({
            "nixpkgs": { "url": "github:NixOS/nixpkgs/nixos-26.05" },
            "crane": { "url": "github:ipetkov/crane" },
            "nixpkgs-promtail": { "url": "github:NixOS/nixpkgs/nixos-25.11" },
        })
    );
}

#[test]
fn shop_data_has_the_design_services_and_ports() {
    let shop = shop();
    let services = shop["services"].as_array().expect("services");
    let got: Vec<(String, u64)> = services
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["port"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = SERVICE_PORTS
        .iter()
        .map(|(n, p)| (n.to_string(), *p))
        .collect();
    assert_eq!(got, want);
    for service in services {
        let name = service["name"].as_str().unwrap();
        assert_eq!(service["binary"], format!("shop-{name}"));
        assert_eq!(service["logFile"], format!("{name}.log"));
    }
    let ports = &shop["ports"];
    for (component, port) in [
        ("grafana", 3000),
        ("prometheus", PROMETHEUS_PORT),
        ("loki", 3100),
        ("promtail", 9080),
        ("postgresql", 5432),
    ] {
        assert_eq!(ports[component], port, "port of {component}");
    }
}

#[test]
fn timing_profiles_have_the_design_intervals() {
    let shop = shop();
    let profiles = shop["profiles"].as_object().expect("profiles");
    assert_eq!(profiles.keys().collect::<Vec<_>>(), ["demo", "fast"]);
    for (name, evaluation, scrape) in PROFILES {
        assert_eq!(
            profiles[name]["ruleEvaluationInterval"], evaluation,
            "{name}"
        );
        assert_eq!(profiles[name]["scrapeInterval"], scrape, "{name}");
    }
}

fn scrape_configs(profile: &str) -> Value {
    eval_json(&format!(
        "{{ root }}: let l = import (root + \"/nixos-modules/lib\"); in \
         l.prometheusScrapeConfigs {{ inherit (l) services; scrapeInterval = l.profiles.{profile}.scrapeInterval; }}"
    ))
}

#[test]
fn scrape_configs_target_the_service_ports() {
    for (profile, _, scrape) in PROFILES {
        let configs = scrape_configs(profile);
        let jobs = configs.as_array().expect("a list of scrape configs");
        let mut want: Vec<(String, String, Value)> = SERVICE_PORTS
            .iter()
            .map(|(name, port)| {
                (
                    format!("shop-{name}"),
                    format!("127.0.0.1:{port}"),
                    json!({ "service": name }),
                )
            })
            .collect();
        want.push((
            "prometheus".into(),
            format!("127.0.0.1:{PROMETHEUS_PORT}"),
            json!({}),
        ));
        let got: Vec<(String, String, Value)> = jobs
            .iter()
            .map(|job| {
                assert_eq!(job["scrape_interval"], scrape, "{profile}");
                assert_eq!(job["metrics_path"], "/metrics");
                let statics = job["static_configs"].as_array().unwrap();
                assert_eq!(statics.len(), 1);
                let targets = statics[0]["targets"].as_array().unwrap();
                assert_eq!(targets.len(), 1);
                (
                    job["job_name"].as_str().unwrap().to_string(),
                    targets[0].as_str().unwrap().to_string(),
                    statics[0]["labels"].clone(),
                )
            })
            .collect();
        assert_eq!(got, want, "{profile}");
    }
}

#[test]
fn scrape_configs_use_only_keys_of_the_nixpkgs_option_type() {
    // services.prometheus.scrapeConfigs is a strictly typed submodule: an unknown key
    // is an evaluation error on a NixOS host (nixpkgs prometheus/default.nix).
    let allowed_job = [
        "job_name",
        "scrape_interval",
        "metrics_path",
        "static_configs",
    ];
    let allowed_static = ["targets", "labels"];
    for job in scrape_configs("demo").as_array().unwrap() {
        for key in job.as_object().unwrap().keys() {
            assert!(allowed_job.contains(&key.as_str()), "unexpected key {key}");
        }
        for group in job["static_configs"].as_array().unwrap() {
            for key in group.as_object().unwrap().keys() {
                assert!(
                    allowed_static.contains(&key.as_str()),
                    "unexpected key {key}"
                );
            }
            assert!(group["labels"]
                .as_object()
                .unwrap()
                .values()
                .all(Value::is_string));
        }
    }
}

#[test]
fn generated_prometheus_config_passes_promtool() {
    let dir = scratch_dir("promtool");
    for (profile, evaluation, scrape) in PROFILES {
        let config = json!({
            "global": { "scrape_interval": scrape, "evaluation_interval": evaluation },
            "scrape_configs": scrape_configs(profile),
        });
        let file = dir.join(format!("prometheus-{profile}.yml"));
        fs::write(&file, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        let output = run(PROMTOOL, &["check", "config", file.to_str().unwrap()], None);
        assert!(
            output.status.success(),
            "promtool check config failed for the {profile} profile:\n{}{}",
            stdout(&output),
            stderr(&output)
        );
    }
    // The check must be able to fail: a bad duration is refused.
    let bad = dir.join("bad.yml");
    fs::write(&bad, r#"{"scrape_configs":[{"job_name":"x","scrape_interval":"5 seconds","static_configs":[{"targets":["127.0.0.1:1"]}]}]}"#).unwrap();
    let output = run(PROMTOOL, &["check", "config", bad.to_str().unwrap()], None);
    let _ = fs::remove_dir_all(&dir);
    assert!(
        !output.status.success(),
        "promtool accepted an invalid config"
    );
}

fn promtail_config() -> Value {
    eval_json(
        "{ root }: let l = import (root + \"/nixos-modules/lib\"); in l.promtailConfig { \
         inherit (l) services; logDir = \"/var/log/alertlab\"; lokiUrl = \"http://127.0.0.1:3100\"; \
         positionsFile = \"/var/lib/alertlab-promtail/positions.yaml\"; }",
    )
}

#[test]
fn promtail_tails_exactly_the_service_log_files_with_the_labels() {
    let config = promtail_config();
    let scrape_configs = config["scrape_configs"].as_array().expect("scrape_configs");
    let mut paths = Vec::new();
    for scrape in scrape_configs {
        let statics = scrape["static_configs"].as_array().unwrap();
        assert_eq!(statics.len(), 1);
        let labels = statics[0]["labels"].as_object().unwrap();
        let service = labels["service"].as_str().unwrap();
        assert_eq!(labels["job"], "alertlab");
        assert_eq!(scrape["job_name"], format!("shop-{service}"));
        assert_eq!(
            labels.len(),
            3,
            "only job, service and __path__: {labels:?}"
        );
        paths.push((
            service.to_string(),
            labels["__path__"].as_str().unwrap().to_string(),
        ));

        let stages = scrape["pipeline_stages"].as_array().unwrap();
        assert_eq!(
            stages,
            &vec![
                json!({ "json": { "expressions": { "level": "level", "event": "event", "timestamp": "timestamp" } } }),
                json!({ "labels": { "level": null } }),
                json!({ "timestamp": { "source": "timestamp", "format": "RFC3339Nano" } }),
            ],
            "{service}: json → level label → the line's own timestamp"
        );
    }
    let want: Vec<(String, String)> = SERVICE_PORTS
        .iter()
        .map(|(name, _)| (name.to_string(), format!("/var/log/alertlab/{name}.log")))
        .collect();
    assert_eq!(
        paths, want,
        "exactly the files the services write, no globs"
    );
}

#[test]
fn promtail_ships_to_loki_and_keeps_positions() {
    let config = promtail_config();
    assert_eq!(
        config["clients"],
        json!([{ "url": "http://127.0.0.1:3100/loki/api/v1/push" }])
    );
    assert_eq!(
        config["positions"],
        json!({ "filename": "/var/lib/alertlab-promtail/positions.yaml" })
    );
    assert_eq!(
        config["server"],
        json!({
            "http_listen_address": "127.0.0.1",
            "http_listen_port": 9080,
            "grpc_listen_address": "127.0.0.1",
            "grpc_listen_port": 0,
        })
    );
}

#[test]
fn service_binaries_default_to_the_design_ports() {
    // Each service's `--listen` default (clap `default_value` in src/settings.rs) is the
    // port the modules and Prometheus use, on loopback: serving other hosts is a choice.
    // Crates not written yet are listed, not checked.
    let mut checked = Vec::new();
    let mut not_yet = Vec::new();
    for (name, port) in SERVICE_PORTS {
        let settings = repo_root().join(format!("services/shop-{name}/src/settings.rs"));
        let Ok(text) = fs::read_to_string(&settings) else {
            not_yet.push(name);
            continue;
        };
        let default = format!("default_value = \"127.0.0.1:{port}\"");
        assert!(
            text.contains(&default),
            "{}: no `{default}`",
            settings.display()
        );
        checked.push(name);
    }
    if !not_yet.is_empty() {
        eprintln!("note: no settings.rs yet for {not_yet:?}; checked {checked:?}");
    }
    assert!(
        !checked.is_empty(),
        "no service crate found under services/"
    );
}

#[test]
fn the_fault_api_answers_the_hosts_names_and_addresses_but_no_wildcard_or_loopback() {
    let hosts = |args: &str| {
        eval_json(&format!(
            "{{ root }}: (import (root + \"/nixos-modules/lib\")).adminAllowedHosts {args}"
        ))
    };
    assert_eq!(
        hosts(
            r#"{ hostName = "shop"; domain = "lab.example"; listenAddress = "0.0.0.0";
                 interfaces = { eth1.ipv4.addresses = [{ address = "192.168.1.2"; prefixLength = 24; }];
                                eth2.ipv6.addresses = [{ address = "fd00::2"; prefixLength = 64; }];
                                eth0 = {}; lo.ipv4.addresses = [{ address = "127.0.0.1"; }]; }; }"#
        ),
        json!(["shop", "shop.lab.example", "192.168.1.2", "fd00::2"])
    );
    // The defaults of a plain host: its name only.
    assert_eq!(
        hosts(r#"{ hostName = "nixos"; listenAddress = "127.0.0.1"; }"#),
        json!(["nixos"])
    );
    // No name, listening on one address that is also an interface's: said once.
    assert_eq!(
        hosts(
            r#"{ hostName = ""; domain = "x"; listenAddress = "10.0.0.5";
                 interfaces.eth0.ipv4.addresses = [{ address = "10.0.0.5"; }]; }"#
        ),
        json!(["10.0.0.5"])
    );
    assert_eq!(
        hosts(r#"{ hostName = "localhost"; listenAddress = "::"; }"#),
        json!([])
    );
}

#[test]
fn every_unit_sandbox_denies_ip_maps_users_privately_and_filters_resource_calls() {
    let sets = eval_json("{ root }: (import (root + \"/nixos-modules/lib\")).unitHardening");
    for name in ["service", "withoutIPCRemoval"] {
        let set = &sets[name];
        assert_eq!(set["IPAddressDeny"], "any", "{name}");
        assert_eq!(set["PrivateUsers"], true, "{name}");
        assert_eq!(set["NoNewPrivileges"], true, "{name}");
        assert_eq!(set["CapabilityBoundingSet"], json!([""]), "{name}");
        assert_eq!(
            set["SystemCallFilter"],
            json!(["@system-service", "~@privileged", "~@resources"]),
            "{name}"
        );
        assert_eq!(set["ProtectSystem"], "strict", "{name}");
    }
    assert_eq!(sets["service"]["RemoveIPC"], true);
    // PostgreSQL's superuser and root keep their IPC objects when such a unit stops.
    assert!(sets["withoutIPCRemoval"].get("RemoveIPC").is_none());
    assert_eq!(
        sets["noNetwork"],
        json!({ "PrivateNetwork": true, "RestrictAddressFamilies": ["AF_UNIX"] })
    );
}

/// A `pub const NAME: usize = N;` of a Rust source file.
fn rust_const(path: &str, name: &str) -> u64 {
    let text = fs::read_to_string(repo_root().join(path)).unwrap();
    let prefix = format!("pub const {name}: usize = ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.strip_suffix(';')?.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix}…; in {path}"))
}

#[test]
fn unit_limits_hold_the_threads_the_runtime_allows_and_the_login_flood_goal() {
    let limits = eval_json("{ root }: (import (root + \"/nixos-modules/lib\")).unitLimits");
    let units = limits.as_object().unwrap();
    for (unit, limit) in units {
        let memory = limit["memoryMiB"].as_u64().unwrap();
        assert_eq!(
            limit["serviceConfig"]["MemoryMax"],
            format!("{memory}M"),
            "{unit}"
        );
        assert!(
            limit["serviceConfig"]["TasksMax"].as_u64().unwrap() > 0,
            "{unit}"
        );
    }
    let tasks = |unit: &str| units[unit]["serviceConfig"]["TasksMax"].as_u64().unwrap();
    let runtime = "services/shop-telemetry/src/runtime.rs";
    let blocking = rust_const(runtime, "MAX_BLOCKING_THREADS");
    let workers = rust_const(runtime, "MAX_WORKER_THREADS");
    // main + workers + blocking threads, and r2d2's pool threads (3) where there is a database.
    let service_threads = 1 + workers + blocking + 3;
    for unit in [
        "shop-api",
        "shop-frontend",
        "shop-payment",
        "shop-inventory",
        "alertlab-migrate",
    ] {
        assert!(
            tasks(unit) >= service_threads,
            "{unit}: TasksMax {} < {service_threads}",
            tasks(unit)
        );
    }
    // labctl: two workers (services/labctl/src/main.rs), the same blocking bound, and for
    // scenario control a shell and systemctl.
    for unit in ["alertlab-traffic", "alertlab-sink", "alertlab-scenarios"] {
        assert!(tasks(unit) >= 1 + 2 + blocking + 2, "{unit}");
    }
    // The API's cap is above the login flood's goal (64 MiB; bench/run --only login-flood).
    assert!(units["shop-api"]["memoryMiB"].as_u64().unwrap() > 64);
}

#[test]
fn the_readme_limits_table_is_unit_limits_json() {
    let path = repo_root().join("nixos-modules/lib/unit-limits.json");
    let data: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let mut expected: Vec<String> = data["units"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(unit, l)| {
            format!(
                "| `{unit}` | {} MiB | {} | {} {} |",
                l["memoryMiB"],
                l["tasks"],
                l["memoryReason"].as_str().unwrap(),
                l["tasksReason"].as_str().unwrap()
            )
        })
        .collect();
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split_once("### Unit limits\n")
        .expect("README.md has a `### Unit limits` section")
        .1;
    let section = section.split("\n## ").next().unwrap();
    let mut rows: Vec<String> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(str::to_owned)
        .collect();
    // The README lists them in the file's order; the parsed file is sorted.
    rows.sort();
    expected.sort();
    assert_eq!(
        rows, expected,
        "README.md's limits table differs from nixos-modules/lib/unit-limits.json"
    );
}
