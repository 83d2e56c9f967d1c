//! `labctl audit exposure`: systemd's own estimate of how exposed each unit is
//! (`systemd-analyze security UNIT`, 0 = locked down … 10 = unrestricted), against the
//! maximum stated for it. A unit above its maximum is a finding that lists the settings it
//! is exposed by, with their share of the level.

use std::{fs, path::Path, process::ExitCode};

use anyhow::{anyhow, Context};

use super::{args::ExposureArgs, verdict};

/// One failed check of the analysis (a `✗` line): the setting and its share of the level.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposed {
    pub setting: String,
    pub description: String,
    pub share: Option<f64>,
}

/// The analysis of one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub unit: String,
    pub level: f64,
    /// `OK`, `MEDIUM`, `EXPOSED`, `UNSAFE`.
    pub predicate: String,
    pub exposed: Vec<Exposed>,
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Reads the output of `systemd-analyze security UNIT...`: one analysis per
/// `Overall exposure level for UNIT: LEVEL PREDICATE` line, with the `✗` lines before it.
pub fn parse(text: &str) -> anyhow::Result<Vec<Analysis>> {
    let text = strip_ansi(text);
    let mut analyses = Vec::new();
    let mut exposed = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('✗') {
            // A setting never holds a space; the share, when there is one, ends the line.
            let mut words: Vec<&str> = rest.split_whitespace().collect();
            let share = words.last().and_then(|w| w.parse::<f64>().ok());
            if share.is_some() {
                words.pop();
            }
            exposed.push(Exposed {
                setting: words.first().copied().unwrap_or_default().to_owned(),
                description: words.get(1..).map(|w| w.join(" ")).unwrap_or_default(),
                share,
            });
        } else if let Some(at) = line.find("Overall exposure level for ") {
            let rest = &line[at + "Overall exposure level for ".len()..];
            let (unit, verdict) = rest
                .rsplit_once(": ")
                .ok_or_else(|| anyhow!("cannot read `{line}`"))?;
            let mut words = verdict.split_whitespace();
            let level: f64 = words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| anyhow!("no level in `{line}`"))?;
            analyses.push(Analysis {
                unit: unit.trim().to_owned(),
                level,
                predicate: words.next().unwrap_or_default().to_owned(),
                exposed: std::mem::take(&mut exposed),
            });
        }
    }
    if analyses.is_empty() {
        return Err(anyhow!(
            "no `Overall exposure level` line in the output of systemd-analyze security: {}",
            crate::http::excerpt(&text)
        ));
    }
    Ok(analyses)
}

/// `UNIT=LEVEL` or `UNIT` (with `default`).
pub fn unit_limit(spec: &str, default: f64) -> anyhow::Result<(String, f64)> {
    let (unit, max) = match spec.split_once('=') {
        Some((unit, level)) => (
            unit,
            level
                .trim()
                .parse::<f64>()
                .map_err(|_| anyhow!("`{spec}`: `{level}` is not an exposure level"))?,
        ),
        None => (spec, default),
    };
    let unit = unit.trim();
    if unit.is_empty() || !(0.0..=10.0).contains(&max) {
        return Err(anyhow!(
            "`{spec}`: give a unit and a level from 0 to 10, e.g. shop-api.service=1.6"
        ));
    }
    Ok((unit.to_owned(), max))
}

/// Settings named in a finding, the most exposing first.
const MOST_EXPOSED: usize = 8;

/// Findings for one analysis against its maximum.
pub fn judge(analysis: &Analysis, max: f64) -> Option<String> {
    // The level is printed with one decimal.
    if analysis.level <= max + 1e-9 {
        return None;
    }
    let mut exposed: Vec<&Exposed> = analysis.exposed.iter().collect();
    exposed.sort_by(|a, b| b.share.unwrap_or(0.0).total_cmp(&a.share.unwrap_or(0.0)));
    let mut named: Vec<String> = exposed
        .iter()
        .take(MOST_EXPOSED)
        .map(|e| match e.share {
            Some(share) => format!("{} {share:.1}", e.setting),
            None => e.setting.clone(),
        })
        .collect();
    if exposed.len() > MOST_EXPOSED {
        named.push(format!("and {} more", exposed.len() - MOST_EXPOSED));
    }
    Some(format!(
        "{} has exposure {:.1} {}, above its maximum {max:.1}; most exposed by: {}",
        analysis.unit,
        analysis.level,
        analysis.predicate,
        named.join(", ")
    ))
}

fn analyze(program: &str, unit: &str) -> anyhow::Result<String> {
    let output = std::process::Command::new(program)
        .args(["security", "--no-pager", unit])
        .env("SYSTEMD_COLORS", "0")
        .output()
        .with_context(|| format!("cannot run `{program}`"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() && !text.contains("Overall exposure level") {
        return Err(anyhow!(
            "`{program} security {unit}` failed: {}",
            crate::http::excerpt(&text)
        ));
    }
    Ok(text)
}

pub async fn command(args: &ExposureArgs) -> anyhow::Result<ExitCode> {
    let limits = args
        .units
        .iter()
        .map(|spec| unit_limit(spec, args.max))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.from_file.is_some() && limits.len() != 1 {
        return Err(anyhow!(
            "--from-file takes the analysis of exactly one unit"
        ));
    }
    let mut findings = Vec::new();
    for (unit, max) in &limits {
        let text = match &args.from_file {
            Some(path) => read(path)?,
            None => analyze(&args.systemd_analyze, unit)?,
        };
        let analyses = parse(&text).with_context(|| unit.clone())?;
        let Some(analysis) = analyses.iter().find(|a| &a.unit == unit) else {
            findings.push(format!(
                "no analysis of {unit} in the output (it has: {})",
                analyses
                    .iter()
                    .map(|a| a.unit.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        };
        println!(
            "{unit}: {:.1} {} (at most {max:.1})",
            analysis.level, analysis.predicate
        );
        findings.extend(judge(analysis, *max));
    }
    verdict("exposure", &findings)
}

fn read(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path)
        .with_context(|| format!("--from-file {}: cannot read it", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/audit")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn systemd_analyze_output_gives_the_level_and_the_exposed_settings() {
        // systemd 252's offline analysis of a unit hardened like the shop's units.
        let analyses = parse(&fixture("exposure-hardened.txt")).unwrap();
        assert_eq!(analyses.len(), 1);
        let a = &analyses[0];
        assert_eq!(
            (a.unit.as_str(), a.level, a.predicate.as_str()),
            ("shop-api.service", 1.5, "OK")
        );
        let settings: Vec<&str> = a.exposed.iter().map(|e| e.setting.as_str()).collect();
        assert!(settings.contains(&"PrivateNetwork="), "{settings:?}");
        assert!(settings.contains(&"UMask="), "{settings:?}");
        let network = a
            .exposed
            .iter()
            .find(|e| e.setting == "PrivateNetwork=")
            .unwrap();
        assert_eq!(network.share, Some(0.5));
        assert_eq!(
            network.description,
            "Service has access to the host's network"
        );
        let unsafe_one = &parse(&fixture("exposure-unhardened.txt")).unwrap()[0];
        assert_eq!(
            (unsafe_one.level, unsafe_one.predicate.as_str()),
            (9.6, "UNSAFE")
        );
        // A setting wider than its column is still one setting.
        let net = unsafe_one
            .exposed
            .iter()
            .find(|e| {
                e.setting
                    .starts_with("CapabilityBoundingSet=~CAP_NET_(BIND")
            })
            .unwrap();
        assert_eq!(net.share, Some(0.1));
    }

    #[test]
    fn colours_and_several_units_are_read() {
        let text = "\u{1b}[0;31m✗\u{1b}[0m PrivateNetwork=   Service has access   \u{1b}[1;31m0.5\u{1b}[0m\n\
                    → Overall exposure level for a.service: \u{1b}[1;32m1.2 OK\u{1b}[0m 🙂\n\
                    ✗ UMask=   Files   0.1\n\
                    → Overall exposure level for b.service: 3.4 OK 🙂\n";
        let analyses = parse(text).unwrap();
        assert_eq!(analyses.len(), 2);
        assert_eq!((analyses[0].level, analyses[0].exposed.len()), (1.2, 1));
        assert_eq!(
            (analyses[1].unit.as_str(), analyses[1].level),
            ("b.service", 3.4)
        );
        assert!(parse("no analysis here").is_err());
    }

    #[test]
    fn a_unit_above_its_maximum_is_a_finding_naming_its_exposure() {
        let a = &parse(&fixture("exposure-hardened.txt")).unwrap()[0];
        assert_eq!(judge(a, 1.5), None, "at the maximum passes");
        let finding = judge(a, 1.4).unwrap();
        assert!(
            finding.starts_with("shop-api.service has exposure 1.5 OK, above its maximum 1.4; most exposed by: PrivateNetwork= 0.5, "),
            "{finding}"
        );
        assert_eq!(
            unit_limit("x.service=1.6", 2.0).unwrap(),
            ("x.service".into(), 1.6)
        );
        assert_eq!(
            unit_limit("x.service", 2.0).unwrap(),
            ("x.service".into(), 2.0)
        );
        for bad in ["x.service=high", "=1", "x.service=11"] {
            assert!(unit_limit(bad, 2.0).is_err(), "{bad}");
        }
    }
}
