//! What an nixos-eval case must produce, checked on the harness's report (`check.sh --dump
//! DIR` writes DIR/report.json, with the evaluated `systemd.services`): units that must or
//! must not exist (among them every service a VM test script names), and the exposure of the
//! hardened units, measured by systemd's offline analysis of the unit files the modules write
//! (`systemd-analyze security --offline=true`) against the levels stated in
//! vm-tests/exposure.json; and in every case, the limits of each unit of ours against
//! nixos-modules/lib/unit-limits.json.

use std::{collections::BTreeMap, fs, path::Path, process::Command};

use anyhow::{anyhow, Context, Result};
use serde_json::{Map, Value};

/// One expectation of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The configuration defines this systemd service (name without `.service`).
    Unit(&'static str),
    /// It does not.
    NoUnit(&'static str),
    /// The units of vm-tests/exposure.json measure the levels it states.
    Exposure,
    /// This service runs labctl with a command line labctl's clap definitions accept.
    LabctlUnit(&'static str),
    /// Every service the VM test script of this name waits for, reloads, stops or audits
    /// (`units.<name>` of vm-tests/scripts.nix) is defined here.
    ScriptUnits(&'static str),
}

/// The units `units.<name>` of vm-tests/scripts.nix lists, evaluated by nix-instantiate.
pub fn script_units(root: &Path, name: &str) -> Result<Vec<String>> {
    let root_text = root
        .to_str()
        .ok_or_else(|| anyhow!("the repository path is not UTF-8"))?;
    let output = Command::new("nix-instantiate")
        .args([
            "--eval", "--strict", "--json", "--argstr", "root", root_text,
        ])
        .arg("--expr")
        .arg(format!(
            "{{ root }}: (import (/. + root + \"/vm-tests/scripts.nix\")).units.{}",
            serde_json::to_string(name)?
        ))
        .output()
        .map_err(|e| anyhow!("cannot run nix-instantiate ({e}); apt-get install nix-bin"))?;
    if !output.status.success() {
        return Err(anyhow!(
            "evaluating units.{name} of vm-tests/scripts.nix: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("units.{name} of vm-tests/scripts.nix is not a list of names"))
}

/// Problems of the services among `units` that `services` lacks (targets are not checked).
pub fn missing_units(units: &[String], services: &Map<String, Value>, script: &str) -> Vec<String> {
    let mut problems: Vec<String> = units
        .iter()
        .filter_map(|unit| unit.strip_suffix(".service"))
        .filter(|name| !services.contains_key(*name))
        .map(|name| {
            format!(
                "{name}.service, named by the {script} test's script (vm-tests/scripts.nix), is not defined here"
            )
        })
        .collect();
    problems.dedup();
    problems
}

/// The units vm-tests/exposure.json states: unit → (measured, max).
pub fn stated_exposure(root: &Path) -> Result<BTreeMap<String, (f64, f64)>> {
    let path = root.join("vm-tests/exposure.json");
    let json: Value = serde_json::from_str(
        &fs::read_to_string(&path).with_context(|| path.display().to_string())?,
    )
    .with_context(|| path.display().to_string())?;
    let units = json["units"]
        .as_object()
        .ok_or_else(|| anyhow!("{}: no `units` object", path.display()))?;
    units
        .iter()
        .map(|(unit, levels)| {
            let level = |key: &str| {
                levels[key]
                    .as_f64()
                    .ok_or_else(|| anyhow!("{}: {unit}: no number `{key}`", path.display()))
            };
            Ok((unit.clone(), (level("measured")?, level("max")?)))
        })
        .collect()
}

/// The evaluated `systemd.services` of a report (none when the report has no systemd part:
/// a configuration that defines no unit).
pub fn services(report: &Value) -> Result<Map<String, Value>> {
    if !report["nixos"].is_object() {
        return Err(anyhow!("the report has no `nixos` part"));
    }
    Ok(report["nixos"]["systemd"]["services"]
        .as_object()
        .cloned()
        .unwrap_or_default())
}

/// A unit file's `[Service]` section as NixOS writes it from `serviceConfig`: one line per
/// value, lists as one line per element, booleans as true/false.
pub fn unit_file(service_config: &Map<String, Value>) -> String {
    let mut text =
        String::from("[Unit]\nDescription=rendered from the nixos-eval report\n\n[Service]\n");
    for (key, value) in service_config {
        let values = match value {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        for value in values {
            let value = match value {
                Value::String(s) => s,
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                other => other.to_string(),
            };
            text.push_str(&format!("{key}={value}\n"));
        }
    }
    text
}

/// A service's `serviceConfig` as NixOS turns it into the unit file: a `script` becomes
/// `ExecStart` (a store path `<name>-start` running it, nixos/lib/systemd-lib.nix), which
/// systemd-analyze needs to analyse the unit at all.
pub fn service_config(service: &Value) -> Option<Map<String, Value>> {
    let mut config = service["serviceConfig"].as_object()?.clone();
    let script = service["script"].as_str().unwrap_or_default();
    if !config.contains_key("ExecStart") && !script.trim().is_empty() {
        config.insert(
            "ExecStart".into(),
            Value::String("/nix/store/00000000000000000000000000000000-unit-script-start".into()),
        );
    }
    Some(config)
}

/// systemd's offline analysis of `units` (name → serviceConfig): unit → level.
pub fn measure(
    systemd_analyze: &str,
    dir: &Path,
    units: &BTreeMap<String, Map<String, Value>>,
) -> Result<BTreeMap<String, f64>> {
    let mut files = Vec::new();
    for (unit, config) in units {
        let file = dir.join(unit);
        fs::write(&file, unit_file(config))?;
        files.push(file);
    }
    let output = Command::new(systemd_analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .args(&files)
        .env("SYSTEMD_COLORS", "0")
        .output()
        .map_err(|e| {
            anyhow!("cannot run `{systemd_analyze}` ({e}); it comes with systemd (apt-get install systemd)")
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let analyses = labctl::audit::exposure::parse(&text)?;
    Ok(analyses.into_iter().map(|a| (a.unit, a.level)).collect())
}

/// The problems of one report against `expect`.
pub fn check(
    root: &Path,
    report: &Value,
    expect: &[Expect],
    scratch: &Path,
) -> Result<Vec<String>> {
    let services = services(report)?;
    let mut problems = Vec::new();
    for e in expect {
        match e {
            Expect::Unit(name) if !services.contains_key(*name) => problems.push(format!(
                "no systemd service {name}, which this configuration must define"
            )),
            Expect::NoUnit(name) if services.contains_key(*name) => problems.push(format!(
                "systemd service {name} is defined, and must not be"
            )),
            Expect::Exposure => problems.extend(exposure(root, &services, scratch)?),
            Expect::LabctlUnit(name) => problems.extend(labctl_unit(root, &services, name)?),
            Expect::ScriptUnits(script) => problems.extend(missing_units(
                &script_units(root, script)?,
                &services,
                script,
            )),
            _ => {}
        }
    }
    Ok(problems)
}

/// Whether a unit is the lab's own: the four services (`shop-*`) and every `alertlab-*`
/// unit. nixpkgs units the lab caps (Loki, Alloy) are checked when unit-limits.json lists
/// them.
fn is_ours(unit: &str) -> bool {
    unit.starts_with("shop-") || unit.starts_with("alertlab-")
}

/// nixos-modules/lib/unit-limits.json: unit → (MemoryMax in MiB, TasksMax).
pub fn stated_limits(root: &Path) -> Result<BTreeMap<String, (u64, u64)>> {
    let path = root.join("nixos-modules/lib/unit-limits.json");
    let json: Value = serde_json::from_str(
        &fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    let units = json["units"]
        .as_object()
        .ok_or_else(|| anyhow!("{}: no `units` object", path.display()))?;
    units
        .iter()
        .map(|(unit, limits)| {
            let number = |key: &str| {
                limits[key]
                    .as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| anyhow!("{unit}: `{key}` is not a positive integer"))
            };
            for reason in ["memoryReason", "tasksReason"] {
                if limits[reason].as_str().is_none_or(|r| r.trim().is_empty()) {
                    return Err(anyhow!("{unit}: no `{reason}` for its value"));
                }
            }
            Ok((unit.clone(), (number("memoryMiB")?, number("tasks")?)))
        })
        .collect()
}

/// Problems of the units of a report against nixos-modules/lib/unit-limits.json: a unit of
/// ours without an entry there, and any listed unit whose `MemoryMax` or `TasksMax` is
/// missing or differs.
pub fn unit_limit_problems(root: &Path, report: &Value) -> Result<Vec<String>> {
    let stated = stated_limits(root)?;
    let mut problems = Vec::new();
    for (unit, service) in services(report)? {
        let Some(&(memory_mib, tasks)) = stated.get(&unit) else {
            if is_ours(&unit) {
                problems.push(format!(
                    "{unit}: a unit of ours without limits: add its MemoryMax and TasksMax, with their reasons, to nixos-modules/lib/unit-limits.json"
                ));
            }
            continue;
        };
        let config = &service["serviceConfig"];
        let memory = config["MemoryMax"].as_str();
        if memory != Some(format!("{memory_mib}M").as_str()) {
            problems.push(format!(
                "{unit}: MemoryMax is {}, unit-limits.json says {memory_mib}M",
                memory.unwrap_or("unset")
            ));
        }
        let tasks_set = match &config["TasksMax"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        if tasks_set != Some(tasks) {
            problems.push(format!(
                "{unit}: TasksMax is {}, unit-limits.json says {tasks}",
                tasks_set.map_or("unset".into(), |n| n.to_string())
            ));
        }
    }
    Ok(problems)
}

/// The words of a command line as systemd reads `ExecStart` (NixOS writes it with
/// `escapeShellArgs`: single quotes, `'\''` for a quote inside).
pub fn exec_words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(anyhow!("unterminated quote in `{line}`")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(
                    chars
                        .next()
                        .ok_or_else(|| anyhow!("trailing backslash in `{line}`"))?,
                );
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn labctl_unit(root: &Path, services: &Map<String, Value>, name: &str) -> Result<Vec<String>> {
    let Some(exec) = services
        .get(name)
        .and_then(|s| s["serviceConfig"]["ExecStart"].as_str())
    else {
        return Ok(vec![format!("{name}: no ExecStart to check")]);
    };
    let words = exec_words(exec)?;
    if !words.first().is_some_and(|w| w.ends_with("/bin/labctl")) {
        return Ok(vec![format!(
            "{name}: ExecStart does not run labctl: {exec}"
        )]);
    }
    let model = crate::clap_source::read_cli(&root.join("services/labctl/src"), "Cli")?;
    Ok(
        match crate::clap_source::check_command(&model, &words[1..]) {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!(
                "{name}: labctl refuses its ExecStart ({e}): {exec}"
            )],
        },
    )
}

fn exposure(root: &Path, services: &Map<String, Value>, scratch: &Path) -> Result<Vec<String>> {
    let stated = stated_exposure(root)?;
    let mut units = BTreeMap::new();
    let mut problems = Vec::new();
    for unit in stated.keys() {
        let name = unit.trim_end_matches(".service");
        match services.get(name).and_then(service_config) {
            Some(config) => {
                units.insert(unit.clone(), config);
            }
            None => problems.push(format!(
                "{unit} (vm-tests/exposure.json) is not defined here"
            )),
        }
    }
    let measured = measure("systemd-analyze", scratch, &units)?;
    for (unit, (level, max)) in &stated {
        match measured.get(unit) {
            Some(m) if (m - level).abs() > 1e-9 => problems.push(format!(
                "{unit} measures {m:.1} (systemd-analyze security --offline), vm-tests/exposure.json states {level:.1}: update the file (and its max)"
            )),
            Some(_) if max < level => problems.push(format!(
                "{unit}: vm-tests/exposure.json's max {max:.1} is below its measured {level:.1}"
            )),
            Some(m) => println!("  exposure {unit}: {m:.1} (at most {max:.1} in the VM)"),
            None if units.contains_key(unit) => {
                problems.push(format!("{unit}: no level in systemd-analyze's output"))
            }
            None => {}
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unit_files_are_written_as_nixos_writes_them() {
        let config = json!({
            "CapabilityBoundingSet": [""],
            "ExecStart": "/nix/store/x-labctl/bin/labctl traffic",
            "NoNewPrivileges": true,
            "RestartSec": 2,
            "SystemCallFilter": ["@system-service", "~@privileged"],
        });
        let text = unit_file(config.as_object().unwrap());
        assert!(
            text.contains("\n[Service]\nCapabilityBoundingSet=\n"),
            "{text}"
        );
        assert!(text.contains("\nNoNewPrivileges=true\n"), "{text}");
        assert!(text.contains("\nRestartSec=2\n"), "{text}");
        assert!(
            text.contains("\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged\n"),
            "{text}"
        );
    }

    #[test]
    fn a_script_is_the_units_exec_start_as_nixos_makes_it() {
        let with_script = json!({"script": "echo hi\n", "serviceConfig": {"Type": "oneshot"}});
        let config = service_config(&with_script).unwrap();
        assert!(config["ExecStart"].as_str().unwrap().ends_with("-start"));
        let given = json!({"script": "", "serviceConfig": {"ExecStart": "/bin/x"}});
        assert_eq!(service_config(&given).unwrap()["ExecStart"], "/bin/x");
        assert!(service_config(&json!({"script": "x"})).is_none());
    }

    #[test]
    fn exec_start_is_split_as_systemd_reads_it() {
        assert_eq!(
            exec_words(
                "/bin/labctl --x 'a b' --stop-command '/bin/systemctl stop x.service' 'it'\\''s'"
            )
            .unwrap(),
            [
                "/bin/labctl",
                "--x",
                "a b",
                "--stop-command",
                "/bin/systemctl stop x.service",
                "it's"
            ]
        );
        assert!(exec_words("'open").is_err());
    }

    #[test]
    fn every_service_a_test_script_names_must_be_defined() {
        let services = json!({"shop-api": {}, "grafana": {}});
        let units: Vec<String> = [
            "postgresql.target",
            "shop-api.service",
            "grafana.service",
            "alloy.service",
            "alloy.service",
        ]
        .iter()
        .map(|u| u.to_string())
        .collect();
        assert_eq!(
            missing_units(&units, services.as_object().unwrap(), "alerts"),
            ["alloy.service, named by the alerts test's script (vm-tests/scripts.nix), is not defined here"]
        );
        // The scripts' own lists, as the cases read them.
        let root = crate::repo_root();
        let alloy = script_units(&root, "alerts-alloy").unwrap();
        assert!(alloy.contains(&"alloy.service".to_owned()), "{alloy:?}");
        assert!(!alloy.contains(&"alertlab-promtail.service".to_owned()));
        let hardening = script_units(&root, "hardening").unwrap();
        assert!(hardening.contains(&"alertlab-scenarios.service".to_owned()));
        assert!(script_units(&root, "no-such-test").is_err());
    }

    #[test]
    fn a_unit_of_ours_without_limits_or_with_others_fails() {
        let root = crate::repo_root();
        let report = json!({"nixos": {"systemd": {"services": {
            "shop-api": {"serviceConfig": {"MemoryMax": "128M", "TasksMax": 64}},
            "shop-payment": {"serviceConfig": {"MemoryMax": "65M", "TasksMax": 64}},
            "alertlab-traffic": {"serviceConfig": {"MemoryMax": "128M"}},
            "alertlab-new": {"serviceConfig": {"MemoryMax": "64M", "TasksMax": 8}},
            "loki": {"serviceConfig": {"MemoryMax": "768M", "TasksMax": "512"}},
            "postgresql": {"serviceConfig": {}},
        }}}});
        assert_eq!(
            unit_limit_problems(&root, &report).unwrap(),
            [
                "alertlab-new: a unit of ours without limits: add its MemoryMax and TasksMax, with their reasons, to nixos-modules/lib/unit-limits.json",
                "alertlab-traffic: TasksMax is unset, unit-limits.json says 64",
                "shop-payment: MemoryMax is 65M, unit-limits.json says 64M",
            ]
        );
    }

    #[test]
    fn every_stated_limit_has_a_value_and_a_reason() {
        let stated = stated_limits(&crate::repo_root()).unwrap();
        for unit in [
            "shop-api",
            "shop-frontend",
            "shop-payment",
            "shop-inventory",
            "alertlab-migrate",
            "alertlab-traffic",
            "alertlab-sink",
            "alertlab-scenarios",
            "alertlab-payment-token",
            "alertlab-sink-token",
            "alertlab-secrets",
            "alertlab-grafana-ro",
            "loki",
            "alertlab-promtail",
            "alloy",
        ] {
            assert!(stated.contains_key(unit), "{unit}");
        }
    }

    #[test]
    fn units_that_must_or_must_not_exist_are_checked() {
        let report = json!({"nixos": {"systemd": {"services": {"alertlab-promtail": {}}}}});
        let dir = std::env::temp_dir();
        let problems = check(
            Path::new("/nonexistent"),
            &report,
            &[
                Expect::Unit("alertlab-promtail"),
                Expect::NoUnit("alertlab-promtail"),
                Expect::Unit("x"),
            ],
            &dir,
        )
        .unwrap();
        assert_eq!(
            problems,
            [
                "systemd service alertlab-promtail is defined, and must not be",
                "no systemd service x, which this configuration must define"
            ]
        );
    }
}
