//! Helpers shared by the Nix check tests: locating the repository and running the
//! external tools, failing loudly (with the install command) when one is missing.

#![allow(dead_code)]

use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

use xtask::repo_root;

/// External tools the checks need, with the command that installs each.
pub const NIX_INSTANTIATE: (&str, &str) = ("nix-instantiate", "apt-get install -y nix-bin");
pub const DEADNIX: (&str, &str) = ("deadnix", "cargo install --locked deadnix");
pub const PROMTOOL: (&str, &str) = ("promtool", "apt-get install -y prometheus");

/// Runs `tool` with `args` (in `dir` if given); panics with the install command when
/// the tool is missing. Never skips.
pub fn run(tool: (&str, &str), args: &[&str], dir: Option<&Path>) -> Output {
    let (program, install) = tool;
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    match command.output() {
        Ok(output) => output,
        Err(error) if error.kind() == ErrorKind::NotFound => panic!(
            "`{program}` is not installed (needed by this check); install it with `{install}`"
        ),
        Err(error) => panic!("running `{program}`: {error}"),
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Evaluates `expr`, a Nix function `{ root }: ...` where `root` is the repository root
/// as a path, with `nix-instantiate --eval --strict --json`, and parses the JSON.
pub fn eval_json(expr: &str) -> Value {
    let root = repo_root();
    let root = root.to_str().expect("the repository path is UTF-8");
    let wrapped =
        format!("{{ rootString }}: let root = /. + rootString; in ({expr}) {{ inherit root; }}");
    let output = run(
        NIX_INSTANTIATE,
        &[
            "--eval",
            "--strict",
            "--json",
            "--argstr",
            "rootString",
            root,
            "-E",
            &wrapped,
        ],
        None,
    );
    assert!(
        output.status.success(),
        "nix-instantiate failed on\n{expr}\n{}",
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).expect("nix-instantiate --json prints JSON")
}

/// The shop data (`nixos-modules/lib/shop.json`) as evaluated through the Nix library.
pub fn shop() -> Value {
    eval_json("{ root }: removeAttrs (import (root + \"/nixos-modules/lib\")) [ \"adminAllowedHosts\" \"prometheusScrapeConfigs\" \"promtailConfig\" \"alloyConfig\" ]")
}

/// A scratch directory unique to this process and `name`, created empty.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// The repository-relative form of `path`, for messages.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}
