//! Each broken fixture makes the checks fail with a message naming the file, the rule (or
//! dashboard, policy, contact point) and the field. The fixtures are copies of real rules with
//! exactly one defect; `valid-rules.json` holds the same rules unbroken and passes.

use alertlab_grafana::{
    lint_contact_points_file, lint_dashboard_file, lint_policies_file, lint_rules_file, repo_root,
    Finding,
};

const DIR: &str = "services/alertlab-grafana/tests/fixtures";

fn show(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("  {f}\n")).collect()
}

/// Asserts that linting `fixture` with `lint` reports `expected` (a substring of one finding's
/// full message, which always starts with the fixture's path).
fn assert_finding(lint: fn(&std::path::Path, &str) -> Vec<Finding>, fixture: &str, expected: &str) {
    let path = format!("{DIR}/{fixture}");
    let findings = lint(&repo_root(), &path);
    let want = format!("{path}: {expected}");
    assert!(
        findings.iter().any(|f| f.to_string().contains(&want)),
        "expected a finding containing\n  {want}\ngot:\n{}",
        show(&findings)
    );
}

#[test]
fn the_unbroken_fixture_passes() {
    let findings = lint_rules_file(&repo_root(), &format!("{DIR}/valid-rules.json"));
    assert!(
        findings.is_empty(),
        "valid-rules.json should pass:\n{}",
        show(&findings)
    );
}

#[test]
fn unknown_datasource_uid() {
    assert_finding(
        lint_rules_file,
        "unknown-datasource-uid.json",
        r#"rule alertlab-high-latency: data[0].datasourceUid: unknown data source uid "promethus""#,
    );
}

#[test]
fn expression_input_that_names_no_step() {
    assert_finding(
        lint_rules_file,
        "missing-refid.json",
        r#"rule alertlab-high-latency: data[2].model.expression: refId "X" names no step of the rule"#,
    );
}

#[test]
fn math_variable_that_names_no_step() {
    assert_finding(
        lint_rules_file,
        "math-missing-refid.json",
        r#"rule alertlab-order-drought: data[2].model.expression: refId "B" names no step of the rule"#,
    );
    assert_finding(
        lint_rules_file,
        "math-missing-refid.json",
        "rule alertlab-order-drought: annotations.description: $values.B names no step of the rule",
    );
}

#[test]
fn condition_that_names_no_step() {
    assert_finding(
        lint_rules_file,
        "bad-condition.json",
        r#"rule alertlab-high-latency: condition: "Z" names no step (refIds: A, B, C)"#,
    );
}

#[test]
fn group_interval_not_a_multiple_of_10s() {
    assert_finding(
        lint_rules_file,
        "bad-interval.json",
        "group alertlab-fixture: interval: interval (15s) should be non-zero and divided exactly by the scheduler interval: 10s",
    );
}

#[test]
fn missing_runbook_file() {
    assert_finding(
        lint_rules_file,
        "missing-runbook.json",
        "rule alertlab-no-runbook: annotations.runbook_url: runbook file docs/runbooks/alertlab-no-runbook.md does not exist",
    );
}

#[test]
fn unknown_scenario() {
    assert_finding(
        lint_rules_file,
        "unknown-scenario.json",
        r#"rule alertlab-high-latency: labels.scenario: unknown scenario "meteor-strike""#,
    );
}

#[test]
fn missing_relative_time_range() {
    assert_finding(
        lint_rules_file,
        "missing-relative-time-range.json",
        "rule alertlab-high-latency: data[0].relativeTimeRange: missing; data-source queries need integer seconds",
    );
}

#[test]
fn relative_time_range_that_is_not_an_integer() {
    assert_finding(
        lint_rules_file,
        "string-relative-time-range.json",
        r#"rule alertlab-high-latency: data[0].relativeTimeRange.from: from must be an integer number of seconds, found "600""#,
    );
}

#[test]
fn templated_label() {
    assert_finding(
        lint_rules_file,
        "templated-label.json",
        "rule alertlab-high-latency: labels.service: labels are env-interpolated at provisioning",
    );
}

#[test]
fn sql_query_not_in_table_format() {
    assert_finding(
        lint_rules_file,
        "sql-time-series.json",
        r#"rule alertlab-low-inventory: data[0].model.format: must be "table""#,
    );
}

#[test]
fn loki_log_query_in_an_alert() {
    assert_finding(
        lint_rules_file,
        "loki-log-query.json",
        "rule alertlab-frontend-errors-in-logs: data[0].model.expr: alerting needs a metric query",
    );
}

#[test]
fn missing_exec_err_state() {
    assert_finding(
        lint_rules_file,
        "missing-exec-err-state.json",
        "rule alertlab-high-latency: execErrState: missing; Grafana's file default is Alerting, set Error",
    );
}

#[test]
fn missing_required_annotation() {
    assert_finding(
        lint_rules_file,
        "missing-annotation.json",
        "rule alertlab-high-latency: annotations.runbook_url: missing required annotation",
    );
}

#[test]
fn duplicate_rule_uid() {
    assert_finding(
        lint_rules_file,
        "duplicate-uid.json",
        r#"rule alertlab-high-latency: uid: duplicate uid "alertlab-high-latency""#,
    );
}

#[test]
fn policy_routing_to_an_unknown_contact_point() {
    assert_finding(
        lint_policies_file,
        "policies-unknown-receiver.json",
        r#"policy: policies[0].routes[1].receiver: contact point "alertlab-pager" does not exist"#,
    );
}

#[test]
fn contact_point_using_an_undefined_template() {
    assert_finding(
        lint_contact_points_file,
        "contact-point-unknown-template.json",
        r#"contact point alertlab-webhook: receivers[0].settings.message: template "alertlab.body" is not defined"#,
    );
}

#[test]
fn dashboard_with_an_unknown_datasource_uid() {
    assert_finding(
        lint_dashboard_file,
        "dashboard-unknown-datasource.json",
        r#"dashboard alertlab-overview: panels[2].targets[0].datasource.uid: unknown data source uid "prom""#,
    );
}

#[test]
fn loki_rule_parsing_every_field_without_the_error_filter() {
    // The payment rule as it was: `| json` with no parameters and no `| __error__=""`.
    for expected in [
        r#"rule alertlab-payment-errors-in-logs: data[0].model.expr: the log pipeline lacks the error filter `| __error__=""`"#,
        "rule alertlab-payment-errors-in-logs: data[0].model.expr: the log pipeline: `| json` without parameters",
        "rule alertlab-payment-errors-in-logs: data[0].model.expr: the log pipeline: `| json` must follow the complete-line filter",
    ] {
        assert_finding(
            lint_rules_file,
            "loki-json-without-error-filter.json",
            expected,
        );
    }
}

#[test]
fn loki_panel_parsing_every_field_without_the_error_filter() {
    assert_finding(
        lint_dashboard_file,
        "dashboard-loki-bare-json.json",
        r#"dashboard alertlab-logs: panels[0].targets[0].expr: the log pipeline lacks the error filter `| __error__=""`"#,
    );
    assert_finding(
        lint_dashboard_file,
        "dashboard-loki-bare-json.json",
        "dashboard alertlab-logs: panels[0].targets[0].expr: the log pipeline: `| json` without parameters",
    );
}
