//! Every Nix file of the repository parses, is alejandra-formatted and has no dead code;
//! `xtask nix-fmt` behaves as documented.

mod common;

use std::{fs, process::Command};

use common::{relative, run, scratch_dir, stderr, stdout, DEADNIX, NIX_INSTANTIATE};
use xtask::{nix_files, repo_root};

/// Files that must exist, so a broken file walk cannot make the checks pass on nothing.
const REQUIRED_NIX_FILES: [&str; 8] = [
    "flake.nix",
    "nixos-modules/default.nix",
    "nixos-modules/shop.nix",
    "nixos-modules/observability.nix",
    "nixos-modules/lab.nix",
    "nixos-modules/lib/default.nix",
    "nixos-modules/lib/prometheus-scrape-configs.nix",
    "nixos-modules/lib/promtail-config.nix",
];

#[test]
fn the_walk_finds_the_repository_nix_files() {
    let root = repo_root();
    let found: Vec<String> = nix_files(&root)
        .unwrap()
        .iter()
        .map(|p| relative(p))
        .collect();
    for required in REQUIRED_NIX_FILES {
        assert!(
            found.iter().any(|f| f == required),
            "{required} not found among {found:?}"
        );
    }
}

#[test]
fn every_nix_file_parses() {
    let files = nix_files(&repo_root()).unwrap();
    let mut failures = Vec::new();
    for file in &files {
        let output = run(NIX_INSTANTIATE, &["--parse", file.to_str().unwrap()], None);
        if !output.status.success() {
            failures.push(format!("{}:\n{}", relative(file), stderr(&output)));
        }
    }
    assert!(
        failures.is_empty(),
        "Nix files that do not parse:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_nix_file_is_alejandra_formatted() {
    let files = nix_files(&repo_root()).unwrap();
    let unformatted = xtask::nix_fmt(&files, true).unwrap();
    assert!(
        unformatted.is_empty(),
        "not alejandra-formatted (run `cargo run -p xtask -- nix-fmt`): {:?}",
        unformatted.iter().map(|p| relative(p)).collect::<Vec<_>>()
    );
}

#[test]
fn every_nix_file_is_deadnix_clean() {
    let files = nix_files(&repo_root()).unwrap();
    let mut args = vec!["--fail"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let output = run(DEADNIX, &args, None);
    assert!(
        output.status.success(),
        "deadnix found unused code:\n{}{}",
        stdout(&output),
        stderr(&output)
    );
}

#[test]
fn deadnix_fails_on_unused_code() {
    // Guards the check above: `--fail` must turn a finding into a non-zero exit.
    let dir = scratch_dir("deadnix");
    let file = dir.join("dead.nix");
    fs::write(&file, "{unused}: let dead = 1; in 2\n").unwrap();
    let output = run(DEADNIX, &["--fail", file.to_str().unwrap()], None);
    let _ = fs::remove_dir_all(&dir);
    assert!(
        !output.status.success(),
        "deadnix --fail passed dead code:\n{}",
        stdout(&output)
    );
}

#[test]
fn nix_fmt_check_reports_and_write_mode_fixes() {
    let dir = scratch_dir("nix-fmt-cli");
    let file = dir.join("x.nix");
    fs::write(&file, "{a=1;}").unwrap();
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let path = file.to_str().unwrap();

    let check = Command::new(xtask)
        .args(["nix-fmt", "--check", path])
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("needs formatting"));
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "{a=1;}",
        "--check must not write"
    );

    let write = Command::new(xtask)
        .args(["nix-fmt", path])
        .output()
        .unwrap();
    assert!(
        write.status.success(),
        "{}",
        String::from_utf8_lossy(&write.stderr)
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "{a = 1;}\n");

    let recheck = Command::new(xtask)
        .args(["nix-fmt", "--check", path])
        .output()
        .unwrap();
    assert!(
        recheck.status.success(),
        "{}",
        String::from_utf8_lossy(&recheck.stderr)
    );

    fs::write(&file, "{ a = ; }").unwrap();
    let broken = Command::new(xtask)
        .args(["nix-fmt", "--check", path])
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(broken.status.code(), Some(1), "a syntax error is an error");
}
