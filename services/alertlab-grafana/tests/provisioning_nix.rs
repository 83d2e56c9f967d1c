//! nixos-modules/lib/grafana-provisioning.nix, the data sources and dashboard provider the
//! observability module gives Grafana, evaluated with nix-instantiate for both timing profiles.

use std::process::Command;

use alertlab_grafana::{render, repo_root, GrafanaFiles};
use serde_json::Value;

fn nix_instantiate() -> String {
    std::env::var("NIX_INSTANTIATE").unwrap_or_else(|_| "nix-instantiate".into())
}

/// Evaluates the function for `profile` over the real files, with `rules` (a Nix expression
/// over the parsed rules file `r`) in place of the rules.
fn eval(profile: &str, rules: &str) -> Result<Value, String> {
    let root = repo_root().canonicalize().expect("repository root");
    let expr = format!(
        r#"{{ root }}: let
             read = file: builtins.fromJSON (builtins.readFile (root + file));
             data = import (root + "/nixos-modules/lib");
             r = read "/grafana/alert-rules.json";
           in import (root + "/nixos-modules/lib/grafana-provisioning.nix") {{
             datasources = read "/grafana/datasources.json";
             rules = {rules};
             dashboardsPath = "/dashboards";
             inherit (data.profiles.{profile}) scrapeInterval;
             postgresUrl = "shop.example:5432";
             postgresPassword = "$__file{{/run/credentials/grafana.service/postgres-password}}";
           }}"#
    );
    let output = Command::new(nix_instantiate())
        .args(["--eval", "--strict", "--json", "--argstr", "root"])
        .arg(&root)
        .args(["-E", &expr])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): install Nix's evaluator with `apt-get install -y nix-bin` \
                 or set NIX_INSTANTIATE",
                nix_instantiate()
            )
        });
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn datasource<'a>(provisioning: &'a Value, kind: &str) -> &'a Value {
    provisioning["datasources"]["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} data source"))
}

#[test]
fn prometheus_time_interval_is_the_profiles_scrape_interval() {
    let mut rate_windows = Vec::new();
    for (profile, scrape) in [("demo", "15s"), ("fast", "5s")] {
        let provisioning = eval(profile, "r").unwrap();
        let prometheus = datasource(&provisioning, "prometheus");
        assert_eq!(
            prometheus["jsonData"]["timeInterval"], scrape,
            "{profile}: {prometheus}"
        );
        assert_eq!(
            prometheus["jsonData"]["httpMethod"], "POST",
            "other settings kept"
        );
        // What $__rate_interval becomes on a 30-minute dashboard: four scrapes.
        let scrape_ms = render::parse_scrape_interval(scrape).unwrap();
        let range = render::TimeRange {
            from_ms: 0,
            to_ms: 1_800_000,
        };
        let interval = render::prometheus_interval_ms(range, scrape_ms, 640);
        rate_windows.push(render::rate_interval_ms(interval, scrape_ms));
    }
    assert_eq!(rate_windows, vec![60_000, 20_000]);
}

#[test]
fn the_file_is_written_in_the_demo_timing() {
    let files = GrafanaFiles::load(&repo_root()).unwrap();
    let prometheus = files
        .datasources
        .datasources
        .iter()
        .find(|d| d.kind == "prometheus")
        .unwrap();
    assert_eq!(prometheus.json_data["timeInterval"], "15s");
}

#[test]
fn postgres_gets_the_shop_host_and_a_password_reference() {
    let provisioning = eval("demo", "r").unwrap();
    let postgres = datasource(&provisioning, "grafana-postgresql-datasource");
    assert_eq!(postgres["url"], "shop.example:5432");
    assert_eq!(
        postgres["secureJsonData"]["password"],
        "$__file{/run/credentials/grafana.service/postgres-password}"
    );
    assert_eq!(postgres["user"], "grafana_ro");
}

#[test]
fn dashboards_go_into_the_folder_of_the_alert_rules() {
    let files = GrafanaFiles::load(&repo_root()).unwrap();
    let provisioning = eval("demo", "r").unwrap();
    let providers = provisioning["dashboardProviders"].as_array().unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["options"]["path"], "/dashboards");
    assert_eq!(providers[0]["folder"], "alertlab");
    for group in &files.rules.groups {
        assert_eq!(
            providers[0]["folder"],
            group.folder.as_str(),
            "{}",
            group.name
        );
    }
    // The alert list panels show that folder's rules.
    let mut lists = 0;
    for (file, dashboard) in &files.dashboards {
        for (path, panel) in dashboard.all_panels() {
            if panel["type"] == "alertlist" {
                lists += 1;
                assert_eq!(
                    panel["options"]["folder"]["title"], "alertlab",
                    "{file}: {path}: the alert list shows every folder"
                );
            }
        }
    }
    assert!(lists > 0, "the dashboards have an alert list");
}

#[test]
fn rules_in_two_folders_are_refused() {
    let error = eval(
        "demo",
        r#"r // { groups = r.groups ++ [ { name = "x"; folder = "elsewhere"; interval = "30s"; rules = []; } ]; }"#,
    )
    .unwrap_err();
    assert!(
        error.contains("the alert rules are in 2 folders (alertlab, elsewhere)"),
        "{error}"
    );
}
