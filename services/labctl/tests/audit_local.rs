//! The audits of this host's files and sockets, through the labctl binary: `store-secrets`
//! on a throwaway Nix store (real `nix-store` and `nix-instantiate`), `exposure` on systemd's
//! own output, `listeners` on the kernel's tables of this machine and on fixtures, `memory`
//! on cgroup directories laid out as the kernel's (this machine has no cgroup v2 to read).
//!
//! Needs `nix-instantiate` and `nix-store` (Debian: `apt-get install nix-bin`); it fails,
//! never skips, without them.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::labctl;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A Nix store of its own under `root`: the environment nix-store and nix-instantiate need
/// (as nixpkgs' lib tests set it up).
struct TestStore {
    env: Vec<(String, String)>,
}

impl TestStore {
    fn new(root: &Path) -> Self {
        let r = |p: &str| root.join(p).display().to_string();
        let env = vec![
            ("HOME".into(), r("home")),
            ("NIX_BUILD_HOOK".into(), String::new()),
            ("NIX_CONF_DIR".into(), r("etc")),
            ("NIX_LOCALSTATE_DIR".into(), r("var")),
            ("NIX_LOG_DIR".into(), r("var/log/nix")),
            ("NIX_STATE_DIR".into(), r("var/nix")),
            ("NIX_STORE_DIR".into(), r("store")),
        ];
        fs::create_dir_all(root.join("home")).unwrap();
        let store = Self { env };
        let init = store
            .command("nix-store")
            .arg("--init")
            .output()
            .unwrap_or_else(|e| {
                panic!("this test needs `nix-store` (apt-get install nix-bin): {e}")
            });
        assert!(init.status.success(), "nix-store --init: {}", text(&init));
        store
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Evaluates `expr` (which writes files with builtins.toFile) into the store.
    fn add(&self, expr: &str) -> PathBuf {
        let out = self
            .command("nix-instantiate")
            .args(["--read-write-mode", "--eval", "--json", "-E", expr])
            .output()
            .unwrap_or_else(|e| {
                panic!("this test needs `nix-instantiate` (apt-get install nix-bin): {e}")
            });
        assert!(out.status.success(), "nix-instantiate: {}", text(&out));
        PathBuf::from(serde_json::from_slice::<String>(&out.stdout).unwrap())
    }
}

const SECRET: &str = "generated-secret-0123456789abcdef";

fn store_secrets(store: &TestStore, args: &[&str]) -> Output {
    let mut c = labctl();
    c.envs(store.env.iter().map(|(k, v)| (k, v)));
    c.args(["audit", "store-secrets"]).args(args);
    c.output().unwrap()
}

#[test]
fn store_secrets_finds_a_secret_in_the_closure_and_proves_it_searched() {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::new(&dir.path().join("nix"));
    let secrets = dir.path().join("secrets");
    fs::create_dir_all(&secrets).unwrap();
    fs::write(secrets.join("fault-token"), format!("{SECRET}\n")).unwrap();
    fs::write(
        secrets.join("grafana-admin-password"),
        "another-secret-0123456789\n",
    )
    .unwrap();

    // A "system" whose configuration refers to a file holding the secret: the leak is two
    // references away from the root, so only a closure walk finds it.
    let leaky = store.add(&format!(
        r#"builtins.toFile "system" "unit: ${{builtins.toFile "provisioning.yaml" "user: grafana_ro\npassword: ${{builtins.toFile "token" "{SECRET}"}}"}}""#
    ));
    let clean = store.add(
        r#"builtins.toFile "system" "unit: ${builtins.toFile "provisioning.yaml" "user: grafana_ro\npassword: $__file{/run/credentials/grafana.service/password}"}""#,
    );
    let secrets_dir = secrets.display().to_string();
    let common = [
        "--secrets-dir",
        secrets_dir.as_str(),
        "--control",
        "user: grafana_ro",
    ];

    let out = store_secrets(
        &store,
        &[&["--closure", leaky.to_str().unwrap()], &common[..]].concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("searched 3 file(s)"), "{all}");
    assert!(
        all.contains("FINDING: the secret fault-token is in 1 file(s): "),
        "{all}"
    );
    assert!(all.contains("-token"), "{all}");
    assert!(
        all.contains("control `user: grafana_ro`: in 1 file(s)"),
        "{all}"
    );
    assert!(
        all.contains("secret grafana-admin-password (25 characters): in no file"),
        "{all}"
    );
    assert!(
        !all.contains(SECRET),
        "the report printed the secret: {all}"
    );

    let out = store_secrets(
        &store,
        &[&["--closure", clean.to_str().unwrap()], &common[..]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("audit store-secrets: ok"),
        "{}",
        text(&out)
    );

    // A control that appears nowhere: the search would be blind, so it fails.
    let out = store_secrets(
        &store,
        &[
            "--closure",
            clean.to_str().unwrap(),
            "--secrets-dir",
            &secrets_dir,
            "--control",
            "no-such-text-anywhere",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the control text `no-such-text-anywhere` is in no searched file"),
        "{}",
        text(&out)
    );

    // A path outside the store database is an error, never an empty pass.
    let out = store_secrets(
        &store,
        &[
            "--closure",
            "/nonexistent/system",
            "--secrets-dir",
            &secrets_dir,
            "--control",
            "x",
        ],
    );
    common::assert_one_line_error(&out, "--query --requisites /nonexistent/system` failed");
}

#[test]
fn store_secrets_counts_what_it_skips_and_refuses_weak_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/config.ini"), "admin_user = admin\n").unwrap();
    // Bigger than the limit: skipped and said so (the limit is what makes it skip).
    fs::write(
        tree.join("big.bin"),
        format!("{}{SECRET}", "x".repeat(2048)),
    )
    .unwrap();
    let outside = dir.path().join("outside");
    fs::write(&outside, SECRET).unwrap();
    // A link is not followed (its target is searched where it lives, if at all).
    std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
    let secret = dir.path().join("token");
    fs::write(&secret, SECRET).unwrap();
    let args = |max: &str| {
        vec![
            "audit".to_owned(),
            "store-secrets".into(),
            "--path".into(),
            tree.display().to_string(),
            "--secret-file".into(),
            secret.display().to_string(),
            "--control".into(),
            "admin_user".into(),
            "--max-file-size".into(),
            max.into(),
        ]
    };
    let out = labctl().args(args("1024")).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("searched 1 file(s)"), "{}", text(&out));
    assert!(
        text(&out).contains("skipped 1 file(s) over 1024 bytes (the largest: "),
        "{}",
        text(&out)
    );
    let out = labctl().args(args("4096")).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("big.bin"), "{}", text(&out));

    fs::write(&secret, "short").unwrap();
    let out = labctl().args(args("4096")).output().unwrap();
    common::assert_one_line_error(
        &out,
        "has 5 characters, fewer than 16: it would be found by chance",
    );
    let out = labctl()
        .args(["audit", "store-secrets", "--path", "/etc", "--control", "x"])
        .output()
        .unwrap();
    common::assert_one_line_error(&out, "no secret to search for");
}

#[test]
fn exposure_reads_systemds_analysis_against_each_units_maximum() {
    let fixture = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/audit")
            .join(name)
            .display()
            .to_string()
    };
    let hardened = fixture("exposure-hardened.txt");
    let out = labctl()
        .args([
            "audit",
            "exposure",
            "--from-file",
            &hardened,
            "shop-api.service=1.5",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("shop-api.service: 1.5 OK (at most 1.5)"));
    let out = labctl()
        .args([
            "audit",
            "exposure",
            "--from-file",
            &hardened,
            "--max",
            "1.2",
            "shop-api.service",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("shop-api.service has exposure 1.5 OK, above its maximum 1.2; most exposed by: PrivateNetwork= 0.5"),
        "{}",
        text(&out)
    );
    let out = labctl()
        .args([
            "audit",
            "exposure",
            "--from-file",
            &hardened,
            "other.service",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out)
        .contains("no analysis of other.service in the output (it has: shop-api.service)"));
}

#[test]
fn listeners_off_loopback_are_findings_unless_allowed() {
    // A socket of this test on every address: the live tables must show it, with its process.
    let socket = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let ours = format!("0.0.0.0:{port}");
    let out = labctl().args(["audit", "listeners"]).output().unwrap();
    let all = text(&out);
    let line = all
        .lines()
        .find(|l| l.starts_with("tcp") && l.contains(&ours))
        .unwrap_or_else(|| panic!("{ours} not listed:\n{all}"));
    assert!(line.ends_with("NOT ALLOWED"), "{line}");
    assert!(
        line.contains("audit_local"),
        "the process is not named: {line}"
    );
    assert_eq!(out.status.code(), Some(1));
    let out = labctl()
        .args(["audit", "listeners", "--allow", &format!("*:{port}/tcp")])
        .output()
        .unwrap();
    let all = text(&out);
    assert!(
        all.lines()
            .any(|l| l.contains(&ours) && l.ends_with("allowed")),
        "{all}"
    );
    assert!(
        !all.contains(&format!("{ours} (")),
        "still a finding: {all}"
    );
    drop(socket);

    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/proc-net");
    let fixtures = fixtures.to_str().unwrap();
    let out = labctl()
        .args(["audit", "listeners", "--proc-net", fixtures])
        .args(["--allow", "0.0.0.0:8080", "--allow", "[::]:5432/tcp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    common::assert_one_line_error(
        &Output {
            status: out.status,
            stdout: Vec::new(),
            stderr: out.stderr.clone(),
        },
        "audit listeners: 1 finding(s): udp 0.0.0.0:68",
    );
    let out = labctl()
        .args(["audit", "listeners", "--proc-net", fixtures])
        .args([
            "--allow",
            "0.0.0.0:8080",
            "--allow",
            "[::]:5432/tcp",
            "--allow",
            "*:68/udp",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// A unit's cgroup as cgroup v2 shows it.
fn cgroup(root: &Path, unit: &str, peak: u64, max: Option<u64>, oom_kills: u64) {
    let dir = root.join(unit);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("memory.peak"), format!("{peak}\n")).unwrap();
    fs::write(
        dir.join("memory.max"),
        max.map(|m| format!("{m}\n"))
            .unwrap_or_else(|| "max\n".into()),
    )
    .unwrap();
    fs::write(dir.join("memory.current"), format!("{}\n", peak / 2)).unwrap();
    fs::write(
        dir.join("memory.stat"),
        format!("anon {}\nfile {}\nkernel 4096\n", peak / 4, peak / 4),
    )
    .unwrap();
    fs::write(
        dir.join("memory.events"),
        format!("low 0\nhigh 0\nmax 0\noom {oom_kills}\noom_kill {oom_kills}\n"),
    )
    .unwrap();
}

#[test]
fn memory_reports_each_units_peak_and_finds_missing_limits() {
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("system.slice");
    cgroup(&root, "shop-api.service", 40 * MIB, Some(128 * MIB), 0);
    cgroup(&root, "loki.service", 300 * MIB, Some(768 * MIB), 0);
    cgroup(&root, "grafana.service", 200 * MIB, None, 0);
    let json = dir.path().join("memory.json");
    let out = labctl()
        .args(["audit", "memory", "shop-api.service", "loki.service"])
        .args(["--without-limit", "grafana.service"])
        .args(["--cgroup-root", root.to_str().unwrap()])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.lines().any(|l| l.starts_with("shop-api.service")
            && l.contains(" 40.0 ")
            && l.contains(" 128.0 ")
            && l.ends_with("ok")),
        "{all}"
    );
    assert!(
        all.lines()
            .any(|l| l.starts_with("grafana.service") && l.contains("none (allowed)")),
        "{all}"
    );
    assert!(
        all.contains("total: the peaks add up to 540.0 MiB"),
        "{all}"
    );
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["peaks_total_bytes"], 540 * MIB);
    let units = report["units"].as_array().unwrap();
    assert_eq!(units.len(), 3);
    assert_eq!(units[0]["unit"], "shop-api.service");
    assert_eq!(units[0]["peak_bytes"], 40 * MIB);
    assert_eq!(units[0]["max_bytes"], 128 * MIB);
    assert_eq!(units[2]["max_bytes"], serde_json::Value::Null);

    // A unit that must have a limit and has none, one killed by the OOM killer, one not
    // running: findings, and the figures are written all the same.
    cgroup(&root, "alertlab-sink.service", 10 * MIB, None, 0);
    cgroup(&root, "alloy.service", 512 * MIB, Some(512 * MIB), 2);
    fs::remove_file(&json).unwrap();
    let out = labctl()
        .args([
            "audit",
            "memory",
            "shop-api.service",
            "alertlab-sink.service",
        ])
        .args(["alloy.service", "alertlab-promtail.service"])
        .args(["--cgroup-root", root.to_str().unwrap()])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    common::assert_one_line_error(
        &Output {
            status: out.status,
            stdout: Vec::new(),
            stderr: out.stderr.clone(),
        },
        "audit memory: 4 finding(s): alertlab-sink.service: no memory limit (MemoryMax is not set); ",
    );
    let findings: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("FINDING: "))
        .collect();
    assert_eq!(findings.len(), 4, "{}", text(&out));
    assert_eq!(
        findings[1..3],
        [
            "alloy.service: its peak 512.0 MiB reached its limit 512.0 MiB",
            "alloy.service: the OOM killer ended 2 of its processes"
        ]
    );
    assert!(
        findings[3].starts_with("alertlab-promtail.service: no cgroup at "),
        "{}",
        findings[3]
    );
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["passed"], false);

    // Nothing to look at is an error, not a pass.
    let out = labctl()
        .args(["audit", "memory", "--cgroup-root", root.to_str().unwrap()])
        .output()
        .unwrap();
    common::assert_one_line_error(&out, "name at least one unit");
}
