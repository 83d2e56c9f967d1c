//! `labctl audit log-lines`: no log line lost on the way to Loki. For a service given with
//! its log files, Loki must count exactly the lines they hold (several files of one service
//! add up; `--with-rotated` adds each file's rotated ones, as the services name them); for a
//! service given alone, Loki must have lines of it. Loki ships in batches, so it polls until
//! the counts hold or `--wait` runs out, then reports both numbers per service.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{anyhow, Context};
use chrono::Utc;

use super::{args::LogLinesArgs, poll, verdict};
use crate::{
    check::{datasource::InstantApi, expr::QueryResult},
    cli::Targets,
    durations, http,
};

/// What each service must have in Loki.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Exactly the lines of these files.
    Lines(Vec<PathBuf>),
    /// At least one line.
    Some,
}

/// `NAME=PATH` (files of one name add up) or `NAME`.
pub fn parse_services(specs: &[String]) -> anyhow::Result<BTreeMap<String, Expect>> {
    let mut out: BTreeMap<String, Expect> = BTreeMap::new();
    for spec in specs {
        let (name, path) = match spec.split_once('=') {
            Some((name, path)) => (name.trim(), Some(PathBuf::from(path.trim()))),
            None => (spec.trim(), None),
        };
        if name.is_empty() {
            return Err(anyhow!("--service `{spec}`: expected NAME or NAME=PATH"));
        }
        match (out.entry(name.to_owned()).or_insert(Expect::Some), path) {
            (entry @ Expect::Some, Some(path)) => *entry = Expect::Lines(vec![path]),
            (Expect::Lines(paths), Some(path)) => paths.push(path),
            (_, None) => {}
        }
    }
    Ok(out)
}

/// Lines (newline characters) in a file.
pub fn count_lines(path: &Path) -> anyhow::Result<u64> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes.iter().filter(|b| **b == b'\n').count() as u64)
}

/// A service's live log file `<dir>/<name>.log` and its rotated files, oldest first, named
/// as the services name them (shop-telemetry's `logging::files_oldest_first`).
pub fn with_rotated(live: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let name = live
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".log"))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            anyhow!(
                "--with-rotated: {} is not a service's log file `<name>.log`",
                live.display()
            )
        })?;
    if !live.is_file() {
        return Err(anyhow!("cannot read {}: no such file", live.display()));
    }
    let dir = live.parent().unwrap_or(Path::new("."));
    Ok(shop_telemetry::logging::files_oldest_first(dir, name))
}

/// The files counted for one service: each given path (with its rotated files when
/// `rotated`), each file once. A file seen under two names counts once too: between the two
/// steps of a rotation the old file is both `<name>.log` and `<name>.log.1`.
pub fn files_to_count(paths: &[PathBuf], rotated: bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut seen = BTreeSet::new();
    for path in paths {
        let expanded = if rotated {
            with_rotated(path)?
        } else {
            vec![path.clone()]
        };
        for file in expanded {
            let meta =
                fs::metadata(&file).with_context(|| format!("cannot read {}", file.display()))?;
            if seen.insert((meta.dev(), meta.ino())) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

/// The query counting lines per service over `window`.
pub fn query(selector: &str, label: &str, window: &str) -> String {
    format!("sum by ({label}) (count_over_time({selector}[{window}]))")
}

/// Findings for Loki's counts against what was written.
pub fn compare(
    written: &BTreeMap<String, Option<u64>>,
    shipped: &BTreeMap<String, u64>,
) -> Vec<String> {
    written
        .iter()
        .filter_map(|(service, lines)| {
            let in_loki = shipped.get(service).copied().unwrap_or(0);
            match lines {
                Some(lines) if *lines != in_loki => Some(format!(
                    "{service}: {lines} line(s) written, {in_loki} in Loki"
                )),
                None if in_loki == 0 => Some(format!("{service}: no line in Loki")),
                _ => None,
            }
        })
        .collect()
}

pub async fn command(targets: &Targets, args: &LogLinesArgs) -> anyhow::Result<ExitCode> {
    let loki_url = targets
        .loki_url
        .as_deref()
        .ok_or_else(|| anyhow!("audit log-lines needs --loki-url"))?;
    http::check_url("--loki-url", loki_url)?;
    let wait = durations::parse("--wait", &args.wait)?;
    durations::parse_positive("--window", &args.window)?;
    let services = parse_services(&args.service)?;
    let mut written: BTreeMap<String, Option<u64>> = BTreeMap::new();
    for (name, expect) in &services {
        written.insert(
            name.clone(),
            match expect {
                Expect::Some => None,
                Expect::Lines(paths) => {
                    let files = files_to_count(paths, args.with_rotated)?;
                    let mut total = 0;
                    let mut counted = Vec::new();
                    for file in &files {
                        let lines = count_lines(file)?;
                        total += lines;
                        counted.push(format!("{} {lines}", file.display()));
                    }
                    println!("{name}: counted {}", counted.join(", "));
                    Some(total)
                }
            },
        );
    }
    let loki = InstantApi::loki(
        http::client(Duration::from_secs(targets.timeout.max(1))),
        loki_url,
    );
    let expr = query(&args.selector, &args.label, &args.window);
    let last = std::sync::Mutex::new(BTreeMap::<String, u64>::new());
    let findings = poll(wait, Duration::from_secs(2), || async {
        match loki.query(&expr, Utc::now()).await {
            QueryResult::Data(series) => {
                let counts: BTreeMap<String, u64> = series
                    .into_iter()
                    .filter_map(|s| {
                        let service = s.labels.get(args.label.as_str())?.clone();
                        Some((service, s.value.unwrap_or(0.0) as u64))
                    })
                    .collect();
                let findings = compare(&written, &counts);
                *last.lock().unwrap_or_else(|e| e.into_inner()) = counts;
                findings
            }
            QueryResult::Error(e) => vec![format!("Loki: {e}")],
        }
    })
    .await;
    let shipped = last.into_inner().unwrap_or_else(|e| e.into_inner());
    for (service, lines) in &written {
        let in_loki = shipped.get(service).copied().unwrap_or(0);
        match lines {
            Some(lines) => println!("{service}: {lines} line(s) written, {in_loki} in Loki"),
            None => println!("{service}: {in_loki} line(s) in Loki"),
        }
    }
    verdict("log-lines", &findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_take_files_or_nothing() {
        let specs: Vec<String> = ["api=/a.log", "api=/a.log.1", "payment", "frontend=/f.log"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let parsed = parse_services(&specs).unwrap();
        assert_eq!(
            parsed["api"],
            Expect::Lines(vec!["/a.log".into(), "/a.log.1".into()])
        );
        assert_eq!(parsed["payment"], Expect::Some);
        assert!(parse_services(&["=x".to_string()]).is_err());
        assert_eq!(
            query("{job=\"alertlab\"}", "service", "2h"),
            "sum by (service) (count_over_time({job=\"alertlab\"}[2h]))"
        );
    }

    #[test]
    fn rotated_files_are_counted_oldest_first_and_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        for (name, text) in [
            ("api.log", "d\n"),
            ("api.log.1", "c\n"),
            ("api.log.2", "a\nb\n"),
            ("api.log.next", "x\n"),
            ("apis.log.1", "x\n"),
            ("payment.log", "p\n"),
        ] {
            fs::write(path(name), text).unwrap();
        }
        let files = files_to_count(&[path("api.log")], true).unwrap();
        assert_eq!(
            files,
            [path("api.log.2"), path("api.log.1"), path("api.log")]
        );
        let total: u64 = files.iter().map(|f| count_lines(f).unwrap()).sum();
        assert_eq!(total, 4);
        // Without the flag, only the file given.
        assert_eq!(
            files_to_count(&[path("api.log")], false).unwrap(),
            [path("api.log")]
        );
        // Given twice, or caught mid-rotation (the old file under both names): once.
        fs::remove_file(path("api.log.1")).unwrap();
        fs::hard_link(path("api.log"), path("api.log.1")).unwrap();
        let files = files_to_count(&[path("api.log"), path("api.log")], true).unwrap();
        assert_eq!(files, [path("api.log.2"), path("api.log.1")]);
        // Not a service's live file, or missing: a clear error.
        let err = files_to_count(&[path("api.log.2")], true).unwrap_err();
        assert!(
            err.to_string().contains("is not a service's log file"),
            "{err}"
        );
        let err = files_to_count(&[path("frontend.log")], true).unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
    }

    #[test]
    fn counts_must_be_equal_or_present() {
        let written = BTreeMap::from([
            ("api".to_owned(), Some(10)),
            ("frontend".to_owned(), Some(0)),
            ("payment".to_owned(), None),
        ]);
        let shipped = BTreeMap::from([("api".to_owned(), 9), ("payment".to_owned(), 3)]);
        assert_eq!(
            compare(&written, &shipped),
            ["api: 10 line(s) written, 9 in Loki"]
        );
        let none = BTreeMap::from([("api".to_owned(), 10)]);
        assert_eq!(compare(&written, &none), ["payment: no line in Loki"]);
        let more = BTreeMap::from([("api".to_owned(), 11), ("payment".to_owned(), 1)]);
        assert_eq!(
            compare(&written, &more),
            ["api: 10 line(s) written, 11 in Loki"]
        );
    }
}
