//! Every reference in the repository's comments, docs and strings to a repository path
//! names a path that exists (a comment naming a file that was renamed or never written
//! misleads whoever follows it). The few strings that name a missing path on purpose — test
//! data — are listed here with why.

use xtask::{path_refs, repo_root};

/// This file lists the deliberate references too.
const THIS_FILE: &str = "services/xtask/tests/path_refs.rs";

/// (file, reference, why it may name a missing path).
const DELIBERATE: &[(&str, &str, &str)] = &[
    (
        "services/alertlab-grafana/src/lint.rs",
        "grafana/x.json",
        "a made-up file name in a unit test of the finding's format",
    ),
    (
        "services/alertlab-grafana/tests/fixtures.rs",
        "docs/runbooks/alertlab-no-runbook.md",
        "the lint must report this runbook as missing",
    ),
    (
        "services/xtask/src/path_refs.rs",
        "nixos-modules/eval/vm-lab.nix",
        "the unit tests of this check need a missing path",
    ),
];

#[test]
fn every_repository_path_named_in_the_repository_exists() {
    let root = repo_root();
    let (checked, dangling) = path_refs::dangling(&root).unwrap();
    // The check must see what the repository is known to reference.
    assert!(
        checked > 100,
        "only {checked} references found: the scanner misses them"
    );
    let unexpected: Vec<String> = dangling
        .iter()
        .filter(|d| {
            !DELIBERATE.iter().any(|(file, reference, _)| {
                d.reference == *reference
                    && (d.file == std::path::Path::new(file) || d.file.ends_with(THIS_FILE))
            })
        })
        .map(|d| format!("{}:{}: {}", d.file.display(), d.line, d.reference))
        .collect();
    assert!(
        unexpected.is_empty(),
        "references to paths that do not exist:\n{}",
        unexpected.join("\n")
    );
    // An entry of the list that no longer names a missing path is stale.
    for (file, reference, why) in DELIBERATE {
        assert!(
            dangling
                .iter()
                .any(|d| d.file == std::path::Path::new(file) && d.reference == *reference),
            "{file} no longer names {reference} ({why}): remove it from DELIBERATE"
        );
    }
}
