//! Repository tasks for alertlab.
//!
//! `nix-fmt` formats (or, with `--check`, checks) the repository's Nix files with the
//! alejandra library, so the formatting check runs without the alejandra CLI (which is
//! not on crates.io). The integration tests in `tests/` are the Nix checks of `.ci/run`.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

pub mod clap_source;
pub mod eval_report;
pub mod options_doc;
pub mod path_refs;

/// Directory names never searched for Nix files.
const SKIPPED_DIRS: [&str; 2] = ["target", ".git"];

/// The repository root: this crate lives in `services/xtask`.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root (CARGO_MANIFEST_DIR/../..) exists")
}

/// Every `.nix` file under `root`, sorted, skipping `target/` and `.git/` directories
/// and symbolic links (a `result` link of `nix build` points into the store).
pub fn nix_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).with_context(|| format!("reading directory {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading directory {}", dir.display()))?;
            let file_type = entry.file_type()?;
            let path = entry.path();
            let name = entry.file_name();
            if file_type.is_dir() {
                if !SKIPPED_DIRS.iter().any(|skipped| name == *skipped) {
                    pending.push(path);
                }
            } else if file_type.is_file() && path.extension().is_some_and(|ext| ext == "nix") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The result of formatting one file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatted {
    /// The text as alejandra formats it.
    pub text: String,
    /// Whether that differs from the input.
    pub changed: bool,
}

/// Formats Nix source text with alejandra; a syntax error is an error.
pub fn format_nix(path: &Path, text: &str) -> Result<Formatted> {
    let (status, formatted) =
        alejandra::format::in_memory(path.display().to_string(), text.to_owned());
    match status {
        alejandra::format::Status::Error(reason) => {
            bail!("{}: alejandra cannot parse it: {reason}", path.display())
        }
        alejandra::format::Status::Changed(changed) => Ok(Formatted {
            text: formatted,
            changed,
        }),
    }
}

/// Formats `files` in place, or only checks them when `check` is set.
/// Returns the files that were (or, with `check`, would be) changed.
pub fn nix_fmt(files: &[PathBuf], check: bool) -> Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    for file in files {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let formatted = format_nix(file, &text)?;
        if formatted.changed {
            if !check {
                fs::write(file, &formatted.text)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            changed.push(file.clone());
        }
    }
    Ok(changed)
}

/// One nixos-eval evaluation: the files given to check.sh together, as a host
/// configuration or (`vm`) as a NixOS test node (`--mode vm`), and what its report must show.
pub struct EvalCase {
    pub what: &'static str,
    pub vm: bool,
    pub files: &'static [&'static str],
    pub expect: &'static [Expect],
}

pub use eval_report::Expect;

const fn host(
    what: &'static str,
    files: &'static [&'static str],
    expect: &'static [Expect],
) -> EvalCase {
    EvalCase {
        what,
        vm: false,
        files,
        expect,
    }
}

const fn vm(
    what: &'static str,
    files: &'static [&'static str],
    expect: &'static [Expect],
) -> EvalCase {
    EvalCase {
        what,
        vm: true,
        files,
        expect,
    }
}

/// The nixos-eval evaluations of the NixOS modules: each module alone (switched on), the
/// lab profile, `nixosConfigurations.example`, the VM tests' nodes (each defining every
/// service its script names), the `nix run` VMs (Promtail and Alloy) and the flake's modules
/// imported together. The chosen shipper runs where the shop's logs are (and the stack is,
/// unless enabled on its own); the scenario control endpoint only where it is enabled.
pub const NIXOS_EVAL_CASES: [EvalCase; 18] = [
    host("shop module", &["nixos-modules/eval/shop.nix"], &[]),
    host(
        "observability module",
        &["nixos-modules/eval/observability.nix"],
        &[Expect::NoUnit("alertlab-promtail")],
    ),
    host(
        "lab profile (nixos-modules/default.nix)",
        &["nixos-modules/eval/lab.nix"],
        &[
            Expect::Unit("alertlab-promtail"),
            Expect::NoUnit("alertlab-scenarios"),
            Expect::LabctlUnit("alertlab-traffic"),
            Expect::LabctlUnit("alertlab-sink"),
        ],
    ),
    host("example host", &["nixos-modules/eval/example.nix"], &[]),
    host(
        "lab serving other hosts (allowed networks, FQDN, sink token file)",
        &["nixos-modules/eval/shop-remote.nix"],
        &[],
    ),
    host("shop module, off", &["nixos-modules/shop.nix"], &[]),
    host(
        "observability module, off",
        &["nixos-modules/observability.nix"],
        &[Expect::NoUnit("alertlab-promtail")],
    ),
    vm(
        "VM test node: alerts.nix machine",
        &["nixos-modules/eval/vm-alerts.nix"],
        &[
            Expect::Unit("alertlab-promtail"),
            Expect::NoUnit("alloy"),
            Expect::ScriptUnits("alerts"),
        ],
    ),
    vm(
        "VM test node: alerts-alloy.nix machine (Alloy shipping)",
        &["nixos-modules/eval/vm-alerts-alloy.nix"],
        &[
            Expect::Unit("alloy"),
            Expect::NoUnit("alertlab-promtail"),
            Expect::ScriptUnits("alerts-alloy"),
        ],
    ),
    vm(
        "VM test node: hardening.nix machine",
        &["nixos-modules/eval/vm-hardening.nix"],
        &[
            Expect::Exposure,
            Expect::ScriptUnits("hardening"),
            Expect::LabctlUnit("alertlab-scenarios"),
        ],
    ),
    vm(
        "VM test node: two-hosts.nix shop",
        &["nixos-modules/eval/vm-two-hosts-shop.nix"],
        &[Expect::Unit("alertlab-promtail")],
    ),
    vm(
        "VM test node: two-hosts.nix monitor",
        &["nixos-modules/eval/vm-two-hosts-monitor.nix"],
        &[Expect::NoUnit("alertlab-promtail")],
    ),
    host(
        "nix run VM (demo host with its vmVariant)",
        &["nixos-modules/eval/demo-vm.nix"],
        &[
            Expect::Unit("alertlab-scenarios"),
            Expect::LabctlUnit("alertlab-scenarios"),
            Expect::Unit("alertlab-promtail"),
            Expect::NoUnit("alloy"),
        ],
    ),
    host(
        "nix run .#alloy VM (the demo host with Alloy shipping)",
        &["nixos-modules/eval/demo-vm-alloy.nix"],
        &[
            Expect::Unit("alloy"),
            Expect::NoUnit("alertlab-promtail"),
            Expect::Unit("alertlab-scenarios"),
        ],
    ),
    host(
        "the flake's nixosModules default, shop and observability imported together",
        &["nixos-modules/eval/flake-modules.nix"],
        &[],
    ),
    host(
        "shop and stack, Promtail shipping, rotation and retention set",
        &["nixos-modules/eval/logs-promtail.nix"],
        &[Expect::Unit("alertlab-promtail"), Expect::NoUnit("alloy")],
    ),
    host(
        "shop and stack, Alloy shipping",
        &["nixos-modules/eval/logs-alloy.nix"],
        &[Expect::Unit("alloy"), Expect::NoUnit("alertlab-promtail")],
    ),
    host(
        "shop host alone, Alloy pushing to another host's Loki",
        &["nixos-modules/eval/logs-alloy-shop-host.nix"],
        &[Expect::Unit("alloy"), Expect::NoUnit("alertlab-promtail")],
    ),
];

/// Where nixos-eval's nixpkgs subset is (`NIXOS_EVAL_SUBSET`, default `/tmp/nixpkgs-subset`).
pub fn nixos_eval_subset() -> PathBuf {
    std::env::var_os("NIXOS_EVAL_SUBSET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/nixpkgs-subset"))
}

/// The harness's `check.sh`: in `$NIXOS_EVAL_HARNESS`, else in `../shared/tools/nixos-eval`
/// beside the repository (a git worktree elsewhere sets the variable).
pub fn nixos_eval_check_sh() -> PathBuf {
    std::env::var_os("NIXOS_EVAL_HARNESS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/tools/nixos-eval"))
        .join("check.sh")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_nix_reports_unformatted_text_and_fixes_it() {
        let path = Path::new("example.nix");
        let formatted = format_nix(path, "{a=1;}").unwrap();
        assert!(formatted.changed);
        assert_eq!(formatted.text, "{a = 1;}\n");
        let again = format_nix(path, &formatted.text).unwrap();
        assert!(!again.changed);
    }

    #[test]
    fn format_nix_rejects_a_syntax_error() {
        let error = format_nix(Path::new("broken.nix"), "{ a = ; }").unwrap_err();
        assert!(error.to_string().contains("broken.nix"), "{error}");
    }

    #[test]
    fn nix_files_skips_target_git_and_symlinks() {
        let dir = std::env::temp_dir().join(format!("xtask-walk-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["a/b", "target/x", ".git/y"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for file in [
            "top.nix",
            "a/b/deep.nix",
            "a/not-nix.txt",
            "target/x/t.nix",
            ".git/y/g.nix",
        ] {
            fs::write(dir.join(file), "{}\n").unwrap();
        }
        std::os::unix::fs::symlink(dir.join("top.nix"), dir.join("link.nix")).unwrap();
        let found = nix_files(&dir).unwrap();
        let _ = fs::remove_dir_all(&dir);
        let names: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a/b/deep.nix", "top.nix"]);
    }
}
