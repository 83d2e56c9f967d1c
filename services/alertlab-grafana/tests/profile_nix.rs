//! grafana/profile.nix and profile::apply are the same function: both profiles of the real rules
//! evaluate to the same JSON, and both reject an unknown profile.

use std::process::Command;

use alertlab_grafana::{profile, repo_root, Profile, ALERT_RULES, PROFILE_NIX};
use serde_json::Value;

/// `nix-instantiate`, or `$NIX_INSTANTIATE` when set.
fn nix_instantiate() -> String {
    std::env::var("NIX_INSTANTIATE").unwrap_or_else(|_| "nix-instantiate".into())
}

/// Evaluates grafana/profile.nix for `profile` over the real rules file.
fn eval_nix(profile: &str) -> Result<Value, String> {
    let root = repo_root().canonicalize().expect("repository root");
    let expr = format!(
        "{{ root }}: import (root + \"/{PROFILE_NIX}\") {{ rules = builtins.fromJSON (builtins.readFile (root + \"/{ALERT_RULES}\")); profile = {}; }}",
        serde_json::to_string(profile).unwrap()
    );
    let output = Command::new(nix_instantiate())
        .args(["--eval", "--strict", "--json", "--argstr", "root"])
        .arg(&root)
        .args(["-E", &expr])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): this test needs Nix's evaluator; install it with \
                 `apt-get install -y nix-bin` (Debian) or put nix on PATH / set NIX_INSTANTIATE",
                nix_instantiate()
            )
        });
    if output.status.success() {
        serde_json::from_slice(&output.stdout).map_err(|e| format!("nix output is not JSON: {e}"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// JSON equality where 1 and 1.0 are the same number (Nix prints floats like 1.0 as 1).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn rules_json() -> Value {
    let text = std::fs::read_to_string(repo_root().join(ALERT_RULES)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn nix_and_rust_profiles_agree() {
    let rules = rules_json();
    for p in Profile::ALL {
        let from_nix = eval_nix(p.name()).unwrap_or_else(|e| panic!("profile.nix {p}: {e}"));
        let from_rust = profile::apply(&rules, p).unwrap();
        assert!(
            same(&from_nix, &from_rust),
            "profile {p}: Nix and Rust differ\nnix:  {from_nix}\nrust: {from_rust}"
        );
    }
    // The comparison is not vacuous: the profiles differ from each other.
    assert!(!same(&eval_nix("fast").unwrap(), &rules));
}

#[test]
fn both_reject_an_unknown_profile() {
    let error = eval_nix("slow").expect_err("profile.nix must throw on an unknown profile");
    assert!(
        error.contains("unknown profile \"slow\"; expected \"demo\" or \"fast\""),
        "unexpected error: {error}"
    );
    assert!("slow".parse::<Profile>().is_err());
}
