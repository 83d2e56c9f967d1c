//! The two programs of the `nix run` VM, run here: the app (nixos-modules/demo-vm-app.nix)
//! and `nix run .#labctl` (demo-vm-labctl.nix), their text evaluated by nix-instantiate with
//! a stand-in `pkgs` whose writeShellApplication gives the text, written out with the
//! preamble nixpkgs' writeShellApplication adds, checked by shellcheck (which nixpkgs runs when
//! it builds them) and run with a stand-in VM that records how it was started.
//!
//! Needs `nix-instantiate` (apt-get install nix-bin) and `shellcheck` (apt-get install
//! shellcheck); fails, never skips, without them.

mod common;

use std::{
    fs,
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::{eval_json, run, scratch_dir, stderr, stdout};
use serde_json::Value;
use xtask::{clap_source, repo_root};

const SHELLCHECK: (&str, &str) = ("shellcheck", "apt-get install -y shellcheck");

/// The scripts' texts; the VM and labctl are placeholders.
fn texts() -> Value {
    eval_json(
        r#"{ root }:
        let
          pkgs = {
            writeShellApplication = { name, text, ... }: text;
            writeText = name: text: "/stand-in/store/${name}";
            lib.getExe = program: program;
            coreutils = null; curl = null; socat = null; util-linux = null;
          };
        in {
          app = import (root + "/nixos-modules/demo-vm-app.nix") { inherit pkgs; vm = "@VM@"; };
          appAlloy = import (root + "/nixos-modules/demo-vm-app.nix") { inherit pkgs; vm = "@VM@"; shipper = "alloy"; };
          labctl = import (root + "/nixos-modules/demo-vm-labctl.nix") { inherit pkgs; labctl = "@LABCTL@"; };
          demo = import (root + "/nixos-modules/lib/demo-vm.nix");
        }"#,
    )
}

/// Writes `text` as writeShellApplication does (shebang, errexit, nounset, pipefail).
fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(
        &path,
        format!("#!/usr/bin/env bash\nset -o errexit\nset -o nounset\nset -o pipefail\n\n{text}"),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn forwarded_ports(texts: &Value) -> Vec<(String, u16)> {
    texts["demo"]["forwarded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["port"].as_u64().unwrap() as u16,
            )
        })
        .collect()
}

/// An offset under which every forwarded port is free here.
fn free_offset(ports: &[(String, u16)]) -> u16 {
    for offset in (20000..40000).step_by(97) {
        if ports
            .iter()
            .all(|(_, port)| TcpListener::bind(("127.0.0.1", port + offset)).is_ok())
        {
            return offset;
        }
    }
    panic!("no offset with every forwarded port free");
}

/// The app (`name`: `app` or `appAlloy` of `texts`) with a stand-in VM that records
/// QEMU_NET_OPTS in the marker file, NIX_DISK_IMAGE and QEMU_OPTS beside it, and exits.
fn app_named(dir: &Path, texts: &Value, name: &str) -> (PathBuf, PathBuf) {
    let marker = dir.join("vm-started");
    let vm = script(
        dir,
        "fake-vm",
        &format!(
            "printf '%s' \"$QEMU_NET_OPTS\" > {0}\nprintf '%s' \"$NIX_DISK_IMAGE\" > {0}.disk\nprintf '%s' \"$QEMU_OPTS\" > {0}.opts\n",
            marker.display()
        ),
    );
    let text = texts[name]
        .as_str()
        .unwrap()
        .replace("@VM@", vm.to_str().unwrap());
    (script(dir, "alertlab-demo", &text), marker)
}

fn app(dir: &Path, texts: &Value) -> (PathBuf, PathBuf) {
    app_named(dir, texts, "app")
}

fn run_app(app: &Path, dir: &Path, offset: &str) -> Output {
    Command::new(app)
        .env("ALERTLAB_PORT_OFFSET", offset)
        .env("ALERTLAB_DEMO_DIR", dir.join("state"))
        .env_remove("QEMU_NET_OPTS")
        .env_remove("NIX_DISK_IMAGE")
        .output()
        .unwrap()
}

#[test]
fn the_scripts_pass_shellcheck_as_nixpkgs_builds_them() {
    let dir = scratch_dir("demo-shellcheck");
    let texts = texts();
    let app = script(&dir, "alertlab-demo", texts["app"].as_str().unwrap());
    let alloy = script(
        &dir,
        "alertlab-demo-alloy",
        texts["appAlloy"].as_str().unwrap(),
    );
    let labctl = script(&dir, "labctl", texts["labctl"].as_str().unwrap());
    for file in [app, alloy, labctl] {
        let out = run(SHELLCHECK, &[file.to_str().unwrap()], None);
        assert!(
            out.status.success(),
            "shellcheck {}:\n{}{}",
            file.display(),
            stdout(&out),
            stderr(&out)
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn nix_run_names_a_taken_port_and_how_to_move_it_before_booting() {
    let dir = scratch_dir("demo-taken");
    let texts = texts();
    let ports = forwarded_ports(&texts);
    let offset = free_offset(&ports);
    let (app, marker) = app(&dir, &texts);
    // Something else listens where Grafana's port would go.
    let (name, port) = &ports[0];
    let _squatter = TcpListener::bind(("127.0.0.1", port + offset)).unwrap();
    let out = run_app(&app, &dir, &offset.to_string());
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("  127.0.0.1:{} ({name})", port + offset)),
        "{err}"
    );
    assert!(err.contains("ALERTLAB_PORT_OFFSET=10000 nix run"), "{err}");
    assert!(!marker.exists(), "the VM was started with a port taken");

    let out = run_app(&app, &dir, "ten");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ALERTLAB_PORT_OFFSET must be a whole number"));
    let out = run_app(&app, &dir, "65000");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("must be at most"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn nix_run_forwards_every_port_moved_by_the_offset() {
    let dir = scratch_dir("demo-forwards");
    let texts = texts();
    let ports = forwarded_ports(&texts);
    let offset = free_offset(&ports);
    let (app, marker) = app(&dir, &texts);
    let out = run_app(&app, &dir, &offset.to_string());
    assert!(
        stderr(&out).contains("QEMU exited (status 0)"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let net = fs::read_to_string(&marker).expect("the VM was started");
    let expected: Vec<String> = ports
        .iter()
        .map(|(_, port)| format!("hostfwd=tcp:127.0.0.1:{}-:{port}", port + offset))
        .collect();
    assert_eq!(net, expected.join(","));
    let banner = stdout(&out);
    assert!(
        banner.contains(&format!("Grafana      http://localhost:{}", 3000 + offset)),
        "{banner}"
    );
    assert!(banner.contains(&format!(
        "ALERTLAB_PORT_OFFSET={offset}: give nix run .#labctl the same"
    )));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn nix_run_alloy_boots_from_a_disk_of_its_own() {
    // A shipper started on the other's disk would ship every kept log line again.
    let dir = scratch_dir("demo-alloy");
    let texts = texts();
    let ports = forwarded_ports(&texts);
    let offset = free_offset(&ports);
    let state = dir.join("state");
    let disk = |marker: &Path| fs::read_to_string(marker.with_extension("disk")).unwrap();
    let opts = |marker: &Path| fs::read_to_string(marker.with_extension("opts")).unwrap();

    let (alloy, marker) = app_named(&dir, &texts, "appAlloy");
    let out = run_app(&alloy, &dir, &offset.to_string());
    assert!(
        stderr(&out).contains("QEMU exited (status 0)"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        disk(&marker),
        state
            .join("alertlab-demo-alloy.qcow2")
            .display()
            .to_string()
    );
    let alloy_opts = opts(&marker);
    assert!(
        alloy_opts.contains(&format!(
            "file:{}",
            state.join("console-alloy.log").display()
        )),
        "{alloy_opts}"
    );
    assert!(alloy_opts.contains("monitor-alloy.sock"), "{alloy_opts}");
    assert!(
        stdout(&out).contains("Grafana Alloy shipping the logs"),
        "{}",
        stdout(&out)
    );
    // The same forwards as `nix run`.
    let net = fs::read_to_string(&marker).unwrap();
    assert_eq!(net.split(',').count(), ports.len(), "{net}");

    let (promtail, marker) = app(&dir, &texts);
    let out = run_app(&promtail, &dir, &offset.to_string());
    assert!(stderr(&out).contains("QEMU exited (status 0)"));
    assert_eq!(
        disk(&marker),
        state.join("alertlab-demo.qcow2").display().to_string()
    );
    assert!(opts(&marker).contains(&format!("file:{}", state.join("console.log").display())));
    assert!(stdout(&out).contains("Promtail shipping the logs"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn nix_run_labctl_points_every_target_at_the_forwarded_ports() {
    let dir = scratch_dir("demo-labctl");
    let texts = texts();
    let fake = script(
        &dir,
        "fake-labctl",
        "env | grep '^LABCTL_' | sort\necho \"args: $*\"\n",
    );
    let wrapper = script(
        &dir,
        "labctl",
        &texts["labctl"]
            .as_str()
            .unwrap()
            .replace("@LABCTL@", fake.to_str().unwrap()),
    );
    let mut command = Command::new(&wrapper);
    for (key, _) in std::env::vars() {
        if key.starts_with("LABCTL_") {
            command.env_remove(key);
        }
    }
    let out = command
        .env("ALERTLAB_PORT_OFFSET", "100")
        .env("LABCTL_PROMETHEUS_URL", "http://mine:9")
        .args(["scenario", "start", "service-down"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let env = stdout(&out);
    for line in [
        "LABCTL_GRAFANA_URL=http://127.0.0.1:3100",
        "LABCTL_SCENARIO_URL=http://127.0.0.1:9198",
        "LABCTL_API_URL=http://127.0.0.1:8180",
        "LABCTL_PROMETHEUS_URL=http://mine:9",
        "LABCTL_SCENARIO_TOKEN_FILE=/stand-in/store/alertlab-demo-scenario-token",
        "LABCTL_GRAFANA_PASSWORD_FILE=/stand-in/store/alertlab-demo-grafana-password",
        "args: scenario start service-down",
    ] {
        assert!(env.lines().any(|l| l == line), "no `{line}` in:\n{env}");
    }
    assert!(
        !env.contains("LABCTL_FAULT_TOKEN_FILE"),
        "the host needs no fault token: {env}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_variables_the_demo_sets_are_labctls() {
    let model = clap_source::read_cli(&repo_root().join("services/labctl/src"), "Cli").unwrap();
    let texts = texts();
    let mut named: Vec<String> = texts["demo"]["forwarded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["labctlVariable"].as_str().unwrap().to_owned())
        .collect();
    named.extend([
        "LABCTL_SCENARIO_TOKEN_FILE".into(),
        "LABCTL_GRAFANA_PASSWORD_FILE".into(),
    ]);
    for variable in named {
        assert!(model.env.contains(&variable), "labctl reads no {variable}");
    }
}
