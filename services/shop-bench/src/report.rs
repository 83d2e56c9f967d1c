//! The figures of a run as Markdown tables, printed and written into the README.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{bail, Context};

use crate::{
    load::Measured,
    login_flood::{LoginFlood, PEAK_TARGET_MIB},
    procs,
};

/// Peak resident memory every service must stay under.
pub const MEMORY_TARGET_MIB: f64 = 30.0;

/// Names of the comparisons the ceiling line combines.
pub const CATALOG_READ: &str = "catalog read";
pub const MIDDLEWARE_COST: &str = "middleware cost";

const README_BEGIN: &str = "<!-- bench:begin -->";
const README_END: &str = "<!-- bench:end -->";

#[derive(Debug, Default)]
pub struct Report {
    pub connections: u32,
    pub duration: u64,
    pub comparisons: Vec<Comparison>,
    pub singles: Vec<Single>,
    pub memory: Vec<MemoryRow>,
    pub login_flood: Option<LoginFlood>,
    pub processes_exited: Vec<String>,
    /// `/proc/loadavg`'s 1-minute figure before the run, when nothing of it ran yet: what
    /// else was using the machine.
    pub load_before: Option<f64>,
}

/// A load against its baseline: the ratio of their rates, and the target for it.
#[derive(Debug)]
pub struct Comparison {
    pub name: &'static str,
    pub subject: Side,
    pub baseline: Side,
    pub target: f64,
}

#[derive(Debug)]
pub struct Side {
    pub label: &'static str,
    pub measured: Measured,
    /// CPU seconds per process during the measured run.
    pub cpu: BTreeMap<&'static str, f64>,
}

impl Comparison {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &'static str,
        subject_label: &'static str,
        baseline_label: &'static str,
        subject: Measured,
        subject_cpu: BTreeMap<&'static str, f64>,
        baseline: Measured,
        baseline_cpu: BTreeMap<&'static str, f64>,
        target: f64,
    ) -> Self {
        Self {
            name,
            subject: Side {
                label: subject_label,
                measured: subject,
                cpu: subject_cpu,
            },
            baseline: Side {
                label: baseline_label,
                measured: baseline,
                cpu: baseline_cpu,
            },
            target,
        }
    }

    pub fn ratio(&self) -> f64 {
        self.subject.measured.per_second() / self.baseline.measured.per_second()
    }

    pub fn met(&self) -> bool {
        self.ratio() >= self.target
    }
}

impl Side {
    /// CPU time of all measured processes per request, in µs.
    pub fn cpu_us_per_request(&self) -> f64 {
        self.cpu.values().sum::<f64>() / self.measured.requests.max(1) as f64 * 1e6
    }
}

/// The best ratio to pgbench any API could reach on this machine if it added nothing but one
/// HTTP request through the services' endpoint stack to pgbench's whole transaction: everything
/// shares the machine's cores, so rates go inversely with the CPU time a request costs.
pub fn http_only_ceiling(pgbench_us: f64, http_us: f64) -> f64 {
    pgbench_us / (pgbench_us + http_us)
}

/// A load without a baseline.
#[derive(Debug)]
pub struct Single {
    pub name: String,
    pub what: String,
    pub measured: Measured,
    pub note: String,
}

#[derive(Debug)]
pub struct MemoryRow {
    pub process: String,
    pub peak_kib: Option<u64>,
}

fn mark(met: bool) -> &'static str {
    if met {
        "✓"
    } else {
        "✗ missed"
    }
}

/// `12,345`
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores ({model})")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    line(&format!(
        "Measured {} on {}, everything on the one machine (services, PostgreSQL, wrk and \
         pgbench share its cores); {} connections, {} s per measured run. Figures vary from \
         run to run by several per cent, and more while anything else runs{}.",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine(),
        report.connections,
        report.duration,
        report.load_before.map_or(String::new(), |load| format!(
            " (load average before the run: {load:.2})"
        )),
    ));
    line("");
    line("| benchmark | load | req/s | p50 ms | p99 ms | failed | ratio | target |");
    line("|---|---|--:|--:|--:|--:|--:|---|");
    let row = |name: &str, label: &str, m: &Measured, ratio: &str, target: &str| {
        format!(
            "| {name} | {label} | {} | {:.2} | {:.2} | {} | {ratio} | {target} |",
            thousands(m.per_second()),
            m.p50_ms,
            m.p99_ms,
            m.failures
        )
    };
    for c in &report.comparisons {
        line(&row(
            c.name,
            c.subject.label,
            &c.subject.measured,
            &format!("**{:.2}**", c.ratio()),
            &format!("≥ {:.2} {}", c.target, mark(c.met())),
        ));
        line(&row("", c.baseline.label, &c.baseline.measured, "", ""));
    }
    for s in &report.singles {
        line(&row(&s.name, &s.what, &s.measured, "", &s.note));
    }

    if !report.comparisons.is_empty() {
        line("");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        line(&format!(
            "CPU time per request in µs, by process (the machine has {cores} × 1,000,000 µs \
             per second; `busy` is the share of all cores in use during the run):"
        ));
        line("");
        let columns = ["api", "payment", "probe", procs::POSTGRES, procs::DRIVER];
        line(&format!(
            "| load | {} | other | total | busy |",
            columns.join(" | ")
        ));
        line(&format!(
            "|---|{}--:|--:|--:|",
            "--:|".repeat(columns.len())
        ));
        let cores = cores as f64;
        for side in report
            .comparisons
            .iter()
            .flat_map(|c| [&c.subject, &c.baseline])
        {
            let per_request = |seconds: f64| seconds / side.measured.requests.max(1) as f64 * 1e6;
            let mut cells = Vec::new();
            for column in columns {
                cells.push(match side.cpu.get(column) {
                    Some(&s) if s > 0.0 => format!("{:.1}", per_request(s)),
                    _ => "–".into(),
                });
            }
            let total: f64 = side.cpu.values().sum();
            let other: f64 = side
                .cpu
                .iter()
                .filter(|(k, _)| !columns.contains(k))
                .fold(0.0, |sum, (_, v)| sum + v);
            line(&format!(
                "| {} | {} | {:.1} | {:.1} | {:.0} % |",
                side.label,
                cells.join(" | "),
                per_request(other),
                per_request(total),
                total / (side.measured.seconds * cores) * 100.0
            ));
        }
    }

    let find = |name: &str| report.comparisons.iter().find(|c| c.name == name);
    if let (Some(catalog), Some(middleware)) = (find(CATALOG_READ), find(MIDDLEWARE_COST)) {
        let (pgbench_us, http_us) = (
            catalog.baseline.cpu_us_per_request(),
            middleware.subject.cpu_us_per_request(),
        );
        line("");
        line(&format!(
            "Ceiling for the catalog read on this machine: an API that added nothing but one HTTP \
             request through the services' endpoint stack ({http_us:.1} µs of CPU, `/healthz` \
             with request metrics) to pgbench's whole transaction ({pgbench_us:.1} µs) would reach \
             at most **{:.2}** of pgbench's rate.",
            http_only_ceiling(pgbench_us, http_us)
        ));
    }

    if let Some(flood) = &report.login_flood {
        line("");
        line(&format!(
            "Login flood: {} clients posting wrong passwords for {:.0} s to an API of its own \
             ({}); answers from its own `/metrics`, peak memory its `VmHWM`, threads sampled \
             every 100 ms:",
            flood.clients, flood.measured.seconds, flood.variant
        ));
        line("");
        line("| logins/s | p50 ms | p99 ms | checked (401) | refused (429) | other | refused share | peak threads | peak MiB | target |");
        line("|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
        line(&format!(
            "| {} | {:.2} | {:.2} | {} | {} | {} | {:.1} % | {} | {} | ≤ {PEAK_TARGET_MIB:.0} {} |",
            thousands(flood.measured.per_second()),
            flood.measured.p50_ms,
            flood.measured.p99_ms,
            thousands(flood.checked as f64),
            thousands(flood.refused as f64),
            flood.other,
            flood.refused_share() * 100.0,
            flood.peak_threads,
            flood.peak_mib().map_or("?".into(), |v| format!("{v:.1}")),
            mark(flood.met()),
        ));
    }

    line("");
    line("Peak resident memory (`VmHWM`) over the whole run:");
    line("");
    line("| process | peak MiB | target |");
    line("|---|--:|---|");
    for m in &report.memory {
        let mib = m.peak_kib.map(|k| k as f64 / 1024.0);
        let is_service = m.process.starts_with("shop-");
        line(&format!(
            "| {} | {} | {} |",
            m.process,
            mib.map_or("?".into(), |v| format!("{v:.1}")),
            match (is_service, mib) {
                (true, Some(v)) =>
                    format!("≤ {MEMORY_TARGET_MIB:.0} {}", mark(v <= MEMORY_TARGET_MIB)),
                _ => String::new(),
            }
        ));
    }
    if !report.processes_exited.is_empty() {
        line("");
        line(&format!(
            "**Processes exited during the run:** {}",
            report.processes_exited.join("; ")
        ));
    }
    out
}

/// Replaces what is between the README's markers with `text`.
pub fn update_readme(path: &Path, text: &str) -> anyhow::Result<()> {
    let readme =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (Some(begin), Some(end)) = (readme.find(README_BEGIN), readme.find(README_END)) else {
        bail!(
            "{} has no `{README_BEGIN}` … `{README_END}` markers",
            path.display()
        );
    };
    if end < begin {
        bail!("{}: the bench markers are out of order", path.display());
    }
    let updated = format!(
        "{}{README_BEGIN}\n{}\n{}",
        &readme[..begin],
        text.trim_end(),
        &readme[end..]
    );
    fs::write(path, updated)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(requests: u64, seconds: f64) -> Measured {
        Measured {
            requests,
            seconds,
            p50_ms: 0.5,
            p99_ms: 2.0,
            failures: 0,
        }
    }

    #[test]
    fn the_table_has_ratios_targets_cpu_and_memory() {
        let report = Report {
            connections: 10,
            duration: 10,
            comparisons: vec![Comparison::new(
                "catalog read",
                "API",
                "pgbench",
                measured(60_000, 10.0),
                BTreeMap::from([("api", 5.0), (procs::POSTGRES, 6.0)]),
                measured(100_000, 10.0),
                BTreeMap::from([(procs::POSTGRES, 12.0)]),
                0.7,
            )],
            singles: vec![],
            memory: vec![MemoryRow {
                process: "shop-api".into(),
                peak_kib: Some(20 * 1024),
            }],
            login_flood: Some(LoginFlood {
                clients: 64,
                measured: measured(3_000, 30.0),
                checked: 1_000,
                refused: 2_000,
                other: 0,
                peak_kib: Some(70 * 1024),
                peak_threads: 41,
                variant: "the shipped login settings".into(),
            }),
            processes_exited: vec![],
            load_before: Some(0.5),
        };
        let text = render(&report);
        assert!(
            text.contains(
                "| catalog read | API | 6,000 | 0.50 | 2.00 | 0 | **0.60** | ≥ 0.70 ✗ missed |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| API | 83.3 | – | – | 100.0 | – | 0.0 | 183.3 |"),
            "{text}"
        );
        assert!(text.contains("| shop-api | 20.0 | ≤ 30 ✓ |"), "{text}");
        assert!(
            text.contains(
                "| 100 | 0.50 | 2.00 | 1,000 | 2,000 | 0 | 66.7 % | 41 | 70.0 | ≤ 64 ✗ missed |"
            ),
            "{text}"
        );
        assert!(
            text.contains("(load average before the run: 0.50)"),
            "{text}"
        );
        assert!(
            !text.contains("Ceiling"),
            "needs the middleware run too: {text}"
        );
    }

    #[test]
    fn the_http_only_ceiling_combines_pgbench_and_the_middleware_run() {
        let comparison = |name, subject_cpu, baseline_cpu| {
            Comparison::new(
                name,
                "subject",
                "baseline",
                measured(100_000, 10.0),
                BTreeMap::from([("probe", subject_cpu)]),
                measured(100_000, 10.0),
                BTreeMap::from([(procs::POSTGRES, baseline_cpu)]),
                0.7,
            )
        };
        // pgbench 2.4 s / 100,000 = 24 µs per transaction; HTTP 1.6 s / 100,000 = 16 µs.
        let report = Report {
            comparisons: vec![
                comparison(CATALOG_READ, 8.0, 2.4),
                comparison(MIDDLEWARE_COST, 1.6, 1.6),
            ],
            ..Report::default()
        };
        let text = render(&report);
        assert!(
            text.contains("(16.0 µs of CPU, `/healthz` with request metrics) to pgbench's whole transaction (24.0 µs) would reach at most **0.60** of pgbench's rate."),
            "{text}"
        );
    }

    #[test]
    fn the_readme_section_is_replaced_between_its_markers() {
        let dir = std::env::temp_dir().join(format!("shop-bench-readme-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("README.md");
        fs::write(
            &path,
            format!("# x\n\n{README_BEGIN}\nold\n{README_END}\n\nafter\n"),
        )
        .unwrap();
        update_readme(&path, "new table\n").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("# x\n\n{README_BEGIN}\nnew table\n{README_END}\n\nafter\n")
        );
        fs::write(&path, "no markers").unwrap();
        assert!(update_readme(&path, "x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
