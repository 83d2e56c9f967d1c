//! `labctl audit memory`: the lab's footprint, from the kernel's own accounting. For each unit
//! it reads the unit's cgroup (v2) under `--cgroup-root` (`/sys/fs/cgroup/system.slice`):
//! `memory.peak` (the most the unit's processes used at once since the cgroup was made,
//! page cache included), `memory.max` (its `MemoryMax`), `memory.current`, `memory.stat`'s
//! `anon` and `file`, and `memory.events`' `oom_kill`. It prints a table, writes the same as
//! JSON with `--json`, and finds a unit that has no limit (unless given with
//! `--without-limit`), whose peak reached its limit, or whose processes the OOM killer ended.

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{args::MemoryArgs, verdict};
use crate::table::Table;

const MIB: f64 = 1024.0 * 1024.0;

/// What the cgroup of one unit says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitMemory {
    pub unit: String,
    /// Whether the unit must have a limit (given without `--without-limit`).
    pub limit_required: bool,
    pub peak_bytes: Option<u64>,
    /// `None`: no limit (`max`).
    pub max_bytes: Option<u64>,
    pub current_bytes: Option<u64>,
    pub anon_bytes: Option<u64>,
    pub file_bytes: Option<u64>,
    pub oom_kills: Option<u64>,
    /// What is wrong with it (empty when nothing).
    pub problems: Vec<String>,
}

impl UnitMemory {
    /// The peak as a share of the limit.
    pub fn peak_share(&self) -> Option<f64> {
        match (self.peak_bytes, self.max_bytes) {
            (Some(peak), Some(max)) if max > 0 => Some(peak as f64 / max as f64),
            _ => None,
        }
    }
}

/// The JSON of `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub measured_at: DateTime<Utc>,
    pub cgroup_root: PathBuf,
    /// The units' peaks added up: an upper bound of the lab's footprint (the units peaked at
    /// different times).
    pub peaks_total_bytes: u64,
    pub current_total_bytes: u64,
    pub passed: bool,
    pub units: Vec<UnitMemory>,
}

/// A cgroup file holding one number; `max` is `None`, and so is a missing file (the caller
/// tells the two apart where it matters).
fn read_number(dir: &Path, file: &str) -> anyhow::Result<Option<u64>> {
    let path = dir.join(file);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let text = text.trim();
    if text == "max" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| anyhow!("{}: `{text}` is not a number of bytes", path.display()))
}

/// A `key value` line of a flat-keyed cgroup file (`memory.stat`, `memory.events`).
fn read_key(dir: &Path, file: &str, key: &str) -> anyhow::Result<Option<u64>> {
    let path = dir.join(file);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    for line in text.lines() {
        if let Some((k, value)) = line.split_once(' ') {
            if k == key {
                return value
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| anyhow!("{}: `{line}` does not end in a number", path.display()));
            }
        }
    }
    Ok(None)
}

/// Reads one unit's cgroup and judges it.
pub fn read_unit(root: &Path, unit: &str, limit_required: bool) -> anyhow::Result<UnitMemory> {
    let dir = root.join(unit);
    let mut memory = UnitMemory {
        unit: unit.to_owned(),
        limit_required,
        peak_bytes: None,
        max_bytes: None,
        current_bytes: None,
        anon_bytes: None,
        file_bytes: None,
        oom_kills: None,
        problems: Vec::new(),
    };
    if !dir.is_dir() {
        memory.problems.push(format!(
            "no cgroup at {} (the unit is not running, or not under this root)",
            dir.display()
        ));
        return Ok(memory);
    }
    memory.peak_bytes = read_number(&dir, "memory.peak")?;
    let has_max = dir.join("memory.max").is_file();
    memory.max_bytes = read_number(&dir, "memory.max")?;
    memory.current_bytes = read_number(&dir, "memory.current")?;
    memory.anon_bytes = read_key(&dir, "memory.stat", "anon")?;
    memory.file_bytes = read_key(&dir, "memory.stat", "file")?;
    memory.oom_kills = read_key(&dir, "memory.events", "oom_kill")?;
    if memory.peak_bytes.is_none() {
        memory.problems.push(format!(
            "no memory.peak in {} (it needs cgroup v2 and Linux 5.19 or later)",
            dir.display()
        ));
    }
    if !has_max {
        memory.problems.push(format!(
            "no memory.max in {} (the memory controller is off for it)",
            dir.display()
        ));
    } else if memory.max_bytes.is_none() && limit_required {
        memory
            .problems
            .push("no memory limit (MemoryMax is not set)".to_owned());
    }
    if let (Some(peak), Some(max)) = (memory.peak_bytes, memory.max_bytes) {
        if peak >= max {
            memory.problems.push(format!(
                "its peak {:.1} MiB reached its limit {:.1} MiB",
                peak as f64 / MIB,
                max as f64 / MIB
            ));
        }
    }
    if let Some(kills) = memory.oom_kills.filter(|k| *k > 0) {
        memory
            .problems
            .push(format!("the OOM killer ended {kills} of its processes"));
    }
    Ok(memory)
}

/// The units, each with whether it needs a limit: the positional ones do, `--without-limit`
/// ones do not; a unit given both ways needs one.
pub fn units(required: &[String], optional: &[String]) -> anyhow::Result<Vec<(String, bool)>> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for (unit, limit_required) in required
        .iter()
        .map(|u| (u, true))
        .chain(optional.iter().map(|u| (u, false)))
    {
        let unit = unit.trim();
        if unit.is_empty() || unit.contains('/') || unit.starts_with('.') {
            return Err(anyhow!(
                "`{unit}` is not a unit name (e.g. shop-api.service)"
            ));
        }
        match out.iter_mut().find(|(u, _)| u == unit) {
            Some(entry) => entry.1 |= limit_required,
            None => out.push((unit.to_owned(), limit_required)),
        }
    }
    if out.is_empty() {
        return Err(anyhow!(
            "name at least one unit (UNIT or --without-limit UNIT)"
        ));
    }
    Ok(out)
}

fn mib(bytes: Option<u64>) -> String {
    bytes
        .map(|b| format!("{:.1}", b as f64 / MIB))
        .unwrap_or_else(|| "-".into())
}

/// The table printed.
pub fn render(units: &[UnitMemory]) -> String {
    let mut table = Table::new(&[
        "UNIT",
        "PEAK MiB",
        "LIMIT MiB",
        "PEAK/LIMIT",
        "NOW MiB",
        "ANON MiB",
        "FILE MiB",
        "OOM KILLS",
        "RESULT",
    ]);
    for u in units {
        table.row(vec![
            u.unit.clone(),
            mib(u.peak_bytes),
            match u.max_bytes {
                Some(_) => mib(u.max_bytes),
                None if u.limit_required => "none".into(),
                None => "none (allowed)".into(),
            },
            u.peak_share()
                .map(|s| format!("{:.0} %", s * 100.0))
                .unwrap_or_else(|| "-".into()),
            mib(u.current_bytes),
            mib(u.anon_bytes),
            mib(u.file_bytes),
            u.oom_kills
                .map(|k| k.to_string())
                .unwrap_or_else(|| "-".into()),
            if u.problems.is_empty() {
                "ok".into()
            } else {
                format!("FINDING: {}", u.problems.join("; "))
            },
        ]);
    }
    table.render()
}

pub fn report(root: &Path, units: Vec<UnitMemory>) -> Report {
    Report {
        measured_at: Utc::now(),
        cgroup_root: root.to_owned(),
        peaks_total_bytes: units.iter().filter_map(|u| u.peak_bytes).sum(),
        current_total_bytes: units.iter().filter_map(|u| u.current_bytes).sum(),
        passed: units.iter().all(|u| u.problems.is_empty()),
        units,
    }
}

pub fn command(args: &MemoryArgs) -> anyhow::Result<ExitCode> {
    let units = units(&args.units, &args.without_limit)?;
    let measured = units
        .iter()
        .map(|(unit, required)| read_unit(&args.cgroup_root, unit, *required))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = report(&args.cgroup_root, measured);
    print!("{}", render(&report.units));
    println!(
        "total: the peaks add up to {} MiB (an upper bound: the units peaked at different times); {} MiB in use now",
        mib(Some(report.peaks_total_bytes)),
        mib(Some(report.current_total_bytes))
    );
    if let Some(path) = &args.json {
        fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write --json {}", path.display()))?;
        println!("written to {}", path.display());
    }
    let findings: Vec<String> = report
        .units
        .iter()
        .flat_map(|u| u.problems.iter().map(move |p| format!("{}: {p}", u.unit)))
        .collect();
    verdict("memory", &findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit's cgroup directory as the kernel shows it.
    fn cgroup(root: &Path, unit: &str, files: &[(&str, &str)]) {
        let dir = root.join(unit);
        fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            fs::write(dir.join(name), text).unwrap();
        }
    }

    const EVENTS: &str = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n";

    #[test]
    fn a_unit_under_its_limit_is_read_whole() {
        let root = tempfile::tempdir().unwrap();
        cgroup(
            root.path(),
            "shop-api.service",
            &[
                ("memory.peak", "50331648\n"),
                ("memory.max", "134217728\n"),
                ("memory.current", "20971520\n"),
                ("memory.stat", "anon 16777216\nfile 4194304\nkernel 1\n"),
                ("memory.events", EVENTS),
            ],
        );
        let u = read_unit(root.path(), "shop-api.service", true).unwrap();
        assert_eq!(
            (
                u.peak_bytes,
                u.max_bytes,
                u.current_bytes,
                u.anon_bytes,
                u.file_bytes,
                u.oom_kills
            ),
            (
                Some(48 << 20),
                Some(128 << 20),
                Some(20 << 20),
                Some(16 << 20),
                Some(4 << 20),
                Some(0)
            )
        );
        assert!(u.problems.is_empty(), "{:?}", u.problems);
        assert_eq!(u.peak_share(), Some(0.375));
        let table = render(&[u]);
        assert!(
            table.contains("shop-api.service  48.0      128.0      38 %        20.0     16.0      4.0       0          ok"),
            "{table}"
        );
    }

    #[test]
    fn no_limit_a_peak_at_the_limit_and_oom_kills_are_findings() {
        let root = tempfile::tempdir().unwrap();
        cgroup(
            root.path(),
            "grafana.service",
            &[("memory.peak", "1000\n"), ("memory.max", "max\n")],
        );
        cgroup(
            root.path(),
            "loki.service",
            &[
                ("memory.peak", "805306368\n"),
                ("memory.max", "805306368\n"),
                (
                    "memory.events",
                    "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n",
                ),
            ],
        );
        let grafana = read_unit(root.path(), "grafana.service", true).unwrap();
        assert_eq!(grafana.problems, ["no memory limit (MemoryMax is not set)"]);
        // Allowed without one, it is only reported.
        let grafana = read_unit(root.path(), "grafana.service", false).unwrap();
        assert!(grafana.problems.is_empty());
        assert_eq!(grafana.max_bytes, None);
        let loki = read_unit(root.path(), "loki.service", true).unwrap();
        assert_eq!(
            loki.problems,
            [
                "its peak 768.0 MiB reached its limit 768.0 MiB",
                "the OOM killer ended 1 of its processes"
            ]
        );
        let gone = read_unit(root.path(), "alloy.service", true).unwrap();
        assert!(gone.problems[0].starts_with("no cgroup at "), "{gone:?}");
        // cgroup v1, or a kernel before 5.19: no peak to read is a finding, not a pass.
        cgroup(root.path(), "old.service", &[("memory.max", "1000\n")]);
        let old = read_unit(root.path(), "old.service", true).unwrap();
        assert!(old.problems[0].starts_with("no memory.peak in "), "{old:?}");
    }

    #[test]
    fn unreadable_numbers_are_errors_and_units_are_named_once() {
        let root = tempfile::tempdir().unwrap();
        cgroup(
            root.path(),
            "x.service",
            &[("memory.peak", "lots\n"), ("memory.max", "max\n")],
        );
        let err = read_unit(root.path(), "x.service", true).unwrap_err();
        assert!(err.to_string().contains("`lots` is not a number"), "{err}");
        let list = units(
            &["a.service".into(), "b.service".into()],
            &["b.service".into(), "c.service".into()],
        )
        .unwrap();
        assert_eq!(
            list,
            [
                ("a.service".to_owned(), true),
                ("b.service".to_owned(), true),
                ("c.service".to_owned(), false)
            ]
        );
        for bad in ["../etc", "", ".hidden"] {
            assert!(units(&[bad.into()], &[]).is_err(), "{bad}");
        }
        assert!(units(&[], &[]).is_err());
    }

    #[test]
    fn the_report_adds_up_the_peaks_and_passes_only_without_findings() {
        let root = tempfile::tempdir().unwrap();
        cgroup(
            root.path(),
            "a.service",
            &[
                ("memory.peak", "1048576"),
                ("memory.max", "2097152"),
                ("memory.current", "1024"),
            ],
        );
        cgroup(
            root.path(),
            "b.service",
            &[("memory.peak", "3145728"), ("memory.max", "max")],
        );
        let a = read_unit(root.path(), "a.service", true).unwrap();
        let b = read_unit(root.path(), "b.service", false).unwrap();
        let r = report(root.path(), vec![a.clone(), b]);
        assert_eq!(
            (r.peaks_total_bytes, r.current_total_bytes),
            (4 << 20, 1024)
        );
        assert!(r.passed);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["units"][1]["max_bytes"], serde_json::Value::Null);
        assert_eq!(json["units"][0]["limit_required"], true);
        let b = read_unit(root.path(), "b.service", true).unwrap();
        assert!(!report(root.path(), vec![a, b]).passed);
    }
}
