//! `labctl audit store-secrets`: no secret of the lab in the Nix store. The files of the
//! given closures (`nix-store --query --requisites`) and paths are read one by one (symbolic
//! links are not followed: their targets are in the closure on their own) and searched for
//! every secret and every control text at once. A file over `--max-file-size` is skipped and
//! counted; a file that cannot be read is a finding (a secret could hide there), and so is a
//! control text found nowhere (the search would be blind) or a search of no file at all.
//! Secrets are named by their file, never printed.

use std::{
    collections::BTreeSet,
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::ExitCode,
};

use aho_corasick::AhoCorasick;
use anyhow::{anyhow, Context};

use super::{args::StoreSecretsArgs, verdict};

/// A secret: the file it came from and its value.
pub struct Secret {
    pub name: String,
    value: Vec<u8>,
}

/// Every file of `dir` and each of `files`, trimmed; each at least `min_len` bytes.
pub fn read_secrets(
    dir: Option<&Path>,
    files: &[PathBuf],
    min_len: usize,
) -> anyhow::Result<Vec<Secret>> {
    let mut paths: Vec<PathBuf> = files.to_vec();
    if let Some(dir) = dir {
        for entry in fs::read_dir(dir)
            .with_context(|| format!("--secrets-dir {}: cannot list it", dir.display()))?
        {
            let path = entry?.path();
            if path.is_file() {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        return Err(anyhow!(
            "no secret to search for: give --secrets-dir with files in it, or --secret-file"
        ));
    }
    paths
        .iter()
        .map(|path| {
            let text = fs::read(path)
                .with_context(|| format!("cannot read the secret file {}", path.display()))?;
            let value = text.trim_ascii().to_vec();
            if value.len() < min_len {
                return Err(anyhow!(
                    "the secret in {} has {} characters, fewer than {min_len}: it would be found by chance",
                    path.display(),
                    value.len()
                ));
            }
            Ok(Secret {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| path.display().to_string()),
                value,
            })
        })
        .collect()
}

/// The store paths of `root`'s closure, from `nix-store --query --requisites`.
pub fn closure(nix_store: &str, root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = std::process::Command::new(nix_store)
        .args(["--query", "--requisites"])
        .arg(root)
        .output()
        .with_context(|| format!("cannot run `{nix_store}`"))?;
    if !output.status.success() {
        return Err(anyhow!(
            "`{nix_store} --query --requisites {}` failed: {}",
            root.display(),
            crate::http::excerpt(&String::from_utf8_lossy(&output.stderr))
        ));
    }
    let paths: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    if paths.is_empty() {
        return Err(anyhow!(
            "`{nix_store} --query --requisites {}` listed no path",
            root.display()
        ));
    }
    Ok(paths)
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Report {
    pub roots: usize,
    pub files: u64,
    pub bytes: u64,
    /// Files over the size limit, with their sizes.
    pub skipped: Vec<(PathBuf, u64)>,
    pub unreadable: Vec<(PathBuf, String)>,
    /// Per secret (by index): the files holding it.
    pub leaks: Vec<Vec<PathBuf>>,
    /// Per control text (by index): the files holding it.
    pub controls: Vec<Vec<PathBuf>>,
}

/// Searches every regular file under `roots` for the secrets and the control texts.
pub fn search(
    roots: &[PathBuf],
    secrets: &[Secret],
    controls: &[String],
    max_file_size: u64,
) -> anyhow::Result<Report> {
    let patterns: Vec<&[u8]> = secrets
        .iter()
        .map(|s| s.value.as_slice())
        .chain(controls.iter().map(|c| c.as_bytes()))
        .collect();
    let matcher = AhoCorasick::new(&patterns).context("cannot build the matcher")?;
    let mut report = Report {
        roots: roots.len(),
        leaks: vec![Vec::new(); secrets.len()],
        controls: vec![Vec::new(); controls.len()],
        ..Report::default()
    };
    let mut pending: Vec<PathBuf> = roots.to_vec();
    let mut buffer = Vec::new();
    while let Some(path) = pending.pop() {
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                report.unreadable.push((path, e.to_string()));
                continue;
            }
        };
        if meta.is_dir() {
            match fs::read_dir(&path) {
                Ok(entries) => {
                    for entry in entries {
                        match entry {
                            Ok(entry) => pending.push(entry.path()),
                            Err(e) => report.unreadable.push((path.clone(), e.to_string())),
                        }
                    }
                }
                Err(e) => report.unreadable.push((path, e.to_string())),
            }
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        if meta.len() > max_file_size {
            report.skipped.push((path, meta.len()));
            continue;
        }
        buffer.clear();
        let read =
            fs::File::open(&path).and_then(|f| f.take(max_file_size + 1).read_to_end(&mut buffer));
        if let Err(e) = read {
            report.unreadable.push((path, e.to_string()));
            continue;
        }
        report.files += 1;
        report.bytes += buffer.len() as u64;
        let mut found = BTreeSet::new();
        for hit in matcher.find_overlapping_iter(&buffer) {
            found.insert(hit.pattern().as_usize());
        }
        for index in found {
            if index < secrets.len() {
                report.leaks[index].push(path.clone());
            } else {
                report.controls[index - secrets.len()].push(path.clone());
            }
        }
    }
    Ok(report)
}

fn some_paths(paths: &[PathBuf]) -> String {
    let mut names: Vec<String> = paths
        .iter()
        .take(3)
        .map(|p| p.display().to_string())
        .collect();
    if paths.len() > 3 {
        names.push(format!("and {} more", paths.len() - 3));
    }
    names.join(", ")
}

/// The report's lines and findings.
pub fn findings(
    report: &Report,
    secrets: &[Secret],
    controls: &[String],
    max: u64,
) -> (Vec<String>, Vec<String>) {
    let mut lines = vec![format!(
        "searched {} file(s), {:.1} MiB, under {} root(s)",
        report.files,
        report.bytes as f64 / (1024.0 * 1024.0),
        report.roots
    )];
    if !report.skipped.is_empty() {
        let largest = report.skipped.iter().max_by_key(|(_, size)| *size);
        lines.push(format!(
            "skipped {} file(s) over {max} bytes{}",
            report.skipped.len(),
            largest
                .map(|(p, s)| format!(" (the largest: {}, {} bytes)", p.display(), s))
                .unwrap_or_default()
        ));
    }
    let mut problems = Vec::new();
    if report.files == 0 {
        problems.push("no file was searched".to_owned());
    }
    for (path, error) in &report.unreadable {
        problems.push(format!("cannot read {}: {error}", path.display()));
    }
    for (control, found) in controls.iter().zip(&report.controls) {
        if found.is_empty() {
            problems.push(format!(
                "the control text `{control}` is in no searched file: the search does not reach the configuration"
            ));
        } else {
            lines.push(format!(
                "control `{control}`: in {} file(s): {}",
                found.len(),
                some_paths(found)
            ));
        }
    }
    for (secret, found) in secrets.iter().zip(&report.leaks) {
        if found.is_empty() {
            lines.push(format!(
                "secret {} ({} characters): in no file",
                secret.name,
                secret.value.len()
            ));
        } else {
            problems.push(format!(
                "the secret {} is in {} file(s): {}",
                secret.name,
                found.len(),
                some_paths(found)
            ));
        }
    }
    (lines, problems)
}

pub async fn command(args: &StoreSecretsArgs) -> anyhow::Result<ExitCode> {
    if args.closure.is_empty() && args.path.is_empty() {
        return Err(anyhow!("give at least one --closure or --path to search"));
    }
    if args.control.iter().any(|c| c.trim().is_empty()) {
        return Err(anyhow!("--control must not be empty"));
    }
    let secrets = read_secrets(
        args.secrets_dir.as_deref(),
        &args.secret_file,
        args.min_secret_length,
    )?;
    let args = args.clone();
    let (lines, problems) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut roots: BTreeSet<PathBuf> = args.path.iter().cloned().collect();
        for root in &args.closure {
            roots.extend(closure(&args.nix_store, root)?);
        }
        let roots: Vec<PathBuf> = roots.into_iter().collect();
        let report = search(&roots, &secrets, &args.control, args.max_file_size)?;
        Ok(findings(
            &report,
            &secrets,
            &args.control,
            args.max_file_size,
        ))
    })
    .await
    .map_err(|e| anyhow!("the search failed: {e}"))??;
    for line in lines {
        println!("{line}");
    }
    verdict("store-secrets", &problems)
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}, <{} bytes>)", self.name, self.value.len())
    }
}
