//! What Grafana sends to the data sources when it draws a dashboard: every panel query with its
//! dashboard variables, Grafana's interval variables (`$__interval`, `$__rate_interval`,
//! `$__range`) and SQL macros expanded, so a test can run the panels against real data sources
//! over a chosen time range.
//!
//! Read in Grafana's source (main branch, 2025–2026; the code has been stable since 10.x):
//! - `public/app/features/dashboard/state/PanelModel.ts` (`runAllPanelQueries`): a panel asks
//!   for `maxDataPoints || floor(width)` points, `width` in pixels;
//! - `pkg/promlib/models/query.go` (`Parse`, `calculatePrometheusInterval`,
//!   `calculateRateInterval`, `InterpolateVariables`) and `pkg/promlib/intervalv2/intervalv2.go`
//!   (`Calculate`, `CalculateSafeInterval`): the step, `$__interval`, `$__rate_interval` and
//!   `$__range`; a query with neither `instant` nor `range` runs as a range query;
//! - grafana-plugin-sdk-go `backend/gtime` (`FormatInterval`, `RoundInterval`);
//! - `pkg/tsdb/grafana-postgresql-datasource/macros.go`: the SQL macros
//!   ([`crate::query::expand_postgres_macros`]).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{duration::parse_prometheus_duration, query, GrafanaFiles, Language};

/// Grafana's default `timeInterval` of a Prometheus data source ("15s"), in milliseconds.
pub const DEFAULT_SCRAPE_INTERVAL_MS: i64 = 15_000;
/// `safeResolution` of Grafana's Prometheus backend: never more points than this.
const SAFE_RESOLUTION: i64 = 11_000;
/// Width in pixels of a dashboard 24 grid columns wide, for panels' default `maxDataPoints`.
pub const DASHBOARD_WIDTH_PX: i64 = 1920;

/// A dashboard time range, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl TimeRange {
    pub fn span_ms(&self) -> i64 {
        self.to_ms - self.from_ms
    }
}

/// One query of one panel, as Grafana would send it before interpolation.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelQuery {
    pub dashboard: String,
    pub panel: String,
    pub ref_id: String,
    pub language: Language,
    /// The query as written (PromQL, LogQL or SQL).
    pub text: String,
    /// A Prometheus query with `instant: true` (a single evaluation at the range's end).
    pub instant: bool,
    /// The points the panel asks for: `maxDataPoints`, else its width in pixels.
    pub max_data_points: i64,
    /// The dashboard's variables at their current values.
    pub variables: BTreeMap<String, String>,
}

/// Every query of every panel of every dashboard, in file order.
pub fn panel_queries(files: &GrafanaFiles) -> Result<Vec<PanelQuery>, String> {
    let ctx = files.context();
    let mut out = Vec::new();
    for (file, dashboard) in &files.dashboards {
        let variables = dashboard_variables(&dashboard.templating)
            .map_err(|e| format!("{file}: dashboard {}: {e}", dashboard.uid))?;
        for (_, panel) in dashboard.all_panels() {
            let panel_uid = panel.pointer("/datasource/uid").and_then(Value::as_str);
            let width_columns = panel
                .pointer("/gridPos/w")
                .and_then(Value::as_i64)
                .unwrap_or(24);
            let max_data_points = panel
                .get("maxDataPoints")
                .and_then(Value::as_i64)
                .unwrap_or(width_columns * DASHBOARD_WIDTH_PX / 24);
            for target in panel
                .get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some((language, _, text)) = ctx.panel_target_query(panel_uid, target) else {
                    continue;
                };
                out.push(PanelQuery {
                    dashboard: dashboard.uid.clone(),
                    panel: panel
                        .get("title")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    ref_id: target
                        .get("refId")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    language,
                    text: text.to_string(),
                    instant: target.get("instant").and_then(Value::as_bool) == Some(true),
                    max_data_points,
                    variables: variables.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// The dashboard's variables at their current values. A value of several items or "All" is
/// kept as Grafana formats it for a regex matcher, `(a|b)`; only plain values are supported.
pub fn dashboard_variables(templating: &Option<Value>) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let list = templating
        .as_ref()
        .and_then(|t| t.get("list"))
        .and_then(Value::as_array);
    for variable in list.into_iter().flatten() {
        let name = variable
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a variable without a name")?;
        let current = variable.pointer("/current/value");
        let values: Vec<String> = match current {
            Some(Value::String(v)) if v == "$__all" => variable
                .get("options")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|o| o.get("value").and_then(Value::as_str))
                .filter(|v| *v != "$__all")
                .map(str::to_string)
                .collect(),
            Some(Value::String(v)) => vec![v.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => return Err(format!("variable {name} has no current value")),
        };
        let value = match values.as_slice() {
            [one] => one.clone(),
            [] => return Err(format!("variable {name} has no value")),
            many => format!("({})", many.join("|")),
        };
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

/// Replaces `$name`, `${name}` and `[[name]]` of the dashboard's variables; Grafana's own
/// `$__...` variables are left for the data source. An unknown variable is an error.
pub fn expand_variables(
    text: &str,
    variables: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find(['$', '[']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let (name, len) = if let Some(inner) = tail.strip_prefix("${") {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 3),
                None => return Err(format!("unclosed ${{ in {text:?}")),
            }
        } else if let Some(inner) = tail.strip_prefix("[[") {
            match inner.find("]]") {
                Some(end) => (&inner[..end], end + 4),
                None => ("", 0),
            }
        } else if let Some(inner) = tail.strip_prefix('$') {
            let end = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            (&inner[..end], end + 1)
        } else {
            ("", 0)
        };
        if len == 0 || name.is_empty() || name.starts_with("__") {
            let keep = if len == 0 { 1 } else { len };
            out.push_str(&tail[..keep]);
            rest = &tail[keep..];
            continue;
        }
        let value = variables
            .get(name)
            .ok_or_else(|| format!("unknown variable ${name} in {text:?}"))?;
        out.push_str(value);
        rest = &tail[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// gtime.RoundInterval: the "nice" interval Grafana rounds a computed one to, in milliseconds.
pub fn round_interval(ms: i64) -> i64 {
    const TABLE: [(i64, i64); 28] = [
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1_500, 1_000),
        (3_500, 2_000),
        (7_500, 5_000),
        (12_500, 10_000),
        (17_500, 15_000),
        (25_000, 20_000),
        (45_000, 30_000),
        (90_000, 60_000),
        (210_000, 120_000),
        (450_000, 300_000),
        (750_000, 600_000),
        (1_050_000, 900_000),
        (1_500_000, 1_200_000),
        (2_700_000, 1_800_000),
        (5_400_000, 3_600_000),
        (9_000_000, 7_200_000),
        (16_200_000, 10_800_000),
        (32_400_000, 21_600_000),
        (86_400_000, 43_200_000),
        (172_800_000, 86_400_000),
        (604_800_000, 86_400_000),
        (1_814_400_000, 604_800_000),
    ];
    TABLE
        .iter()
        .find(|(limit, _)| ms <= *limit)
        .map(|(_, rounded)| *rounded)
        .unwrap_or(if ms < 3_628_800_000 {
            2_592_000_000
        } else {
            31_536_000_000
        })
}

/// `$__interval` of a Prometheus panel query, and the step of its range query: the range
/// divided by the points the panel asks for, rounded, at least the data source's scrape
/// interval (its `timeInterval`), and never more than 11,000 points.
pub fn prometheus_interval_ms(range: TimeRange, scrape_ms: i64, max_data_points: i64) -> i64 {
    let points = if max_data_points > 0 {
        max_data_points
    } else {
        1500
    };
    let raw = range.span_ms() / points;
    let calculated = if raw < scrape_ms {
        scrape_ms
    } else {
        round_interval(raw)
    };
    calculated.max(round_interval(range.span_ms() / SAFE_RESOLUTION))
}

/// `$__rate_interval`: max(`$__interval` + scrape interval, 4 × scrape interval), so a rate
/// always spans at least four scrapes.
pub fn rate_interval_ms(interval_ms: i64, scrape_ms: i64) -> i64 {
    (interval_ms + scrape_ms).max(4 * scrape_ms)
}

/// gtime.FormatInterval: `15s`, `1m`, `2h` (whole units, truncated), as `$__interval` is written.
pub fn format_interval(ms: i64) -> String {
    const UNITS: [(i64, &str); 6] = [
        (365 * 86_400_000, "y"),
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    UNITS
        .iter()
        .find(|(size, _)| ms >= *size)
        .map(|(size, unit)| format!("{}{unit}", ms / size))
        .unwrap_or_else(|| "1ms".into())
}

/// Go's `time.Duration.String()` for whole milliseconds, as `$__rate_interval` is written
/// (`1m0s`, `20s`, `1h0m0s`, `500ms`).
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let seconds = ms / 1_000;
    let fraction = ms % 1_000;
    let s = if fraction == 0 {
        format!("{}s", seconds % 60)
    } else {
        let text = format!("{}.{fraction:03}", seconds % 60);
        format!("{}s", text.trim_end_matches('0'))
    };
    match (seconds / 3_600, seconds / 60 % 60) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// Parses a data source's `timeInterval` (`15s`, `1m`) into milliseconds.
pub fn parse_scrape_interval(text: &str) -> Option<i64> {
    parse_prometheus_duration(text).and_then(|ms| i64::try_from(ms).ok())
}

/// A Prometheus panel query as the data source runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromRequest {
    pub expr: String,
    /// Range queries: start, end and step in milliseconds, start and end aligned down to the
    /// step (Grafana's `AlignTimeRange`). Instant queries: `end` is the evaluation time.
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
    pub instant: bool,
}

/// The Prometheus request Grafana makes for `query` over `range`, with a data source whose
/// `timeInterval` is `scrape_ms`.
pub fn prometheus_request(
    query: &PanelQuery,
    range: TimeRange,
    scrape_ms: i64,
) -> Result<PromRequest, String> {
    let interval = prometheus_interval_ms(range, scrape_ms, query.max_data_points);
    let rate = rate_interval_ms(interval, scrape_ms);
    let range_ms = range.span_ms();
    let range_s = (range_ms as f64 / 1000.0).round() as i64;
    let expr = expand_variables(&query.text, &query.variables)?;
    let mut expr = expr;
    for (names, value) in [
        (["$__interval_ms", "${__interval_ms}"], interval.to_string()),
        (["$__interval", "${__interval}"], format_interval(interval)),
        (["$__range_ms", "${__range_ms}"], range_ms.to_string()),
        (["$__range_s", "${__range_s}"], range_s.to_string()),
        (["$__range", "${__range}"], format!("{range_s}s")),
        (
            ["$__rate_interval_ms", "${__rate_interval_ms}"],
            rate.to_string(),
        ),
        (
            ["$__rate_interval", "${__rate_interval}"],
            go_duration(rate),
        ),
    ] {
        for name in names {
            expr = expr.replace(name, &value);
        }
    }
    if let Some(pos) = expr.find("$__") {
        return Err(format!("unsupported variable at {:?}", &expr[pos..]));
    }
    let align = |t: i64| t.div_euclid(interval) * interval;
    Ok(PromRequest {
        expr,
        start_ms: align(range.from_ms),
        end_ms: if query.instant {
            range.to_ms
        } else {
            align(range.to_ms)
        },
        step_ms: interval,
        instant: query.instant,
    })
}

/// A SQL panel query as the PostgreSQL data source runs it: variables and macros expanded, the
/// times written as Grafana writes them (RFC 3339, UTC; `from` and `to` are given so).
pub fn postgres_sql(query: &PanelQuery, from: &str, to: &str) -> Result<String, String> {
    let sql = expand_variables(&query.text, &query.variables)?;
    query::expand_postgres_macros(&sql, from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_as_grafana_computes_them() {
        let thirty_minutes = TimeRange {
            from_ms: 0,
            to_ms: 1_800_000,
        };
        // 1.8 s per point on an 8-column panel (640 px): the 15 s scrape interval wins.
        assert_eq!(prometheus_interval_ms(thirty_minutes, 15_000, 640), 15_000);
        assert_eq!(rate_interval_ms(15_000, 15_000), 60_000);
        assert_eq!(go_duration(60_000), "1m0s");
        // The fast profile's 5 s scrapes: a 20 s rate window.
        assert_eq!(prometheus_interval_ms(thirty_minutes, 5_000, 640), 5_000);
        assert_eq!(go_duration(rate_interval_ms(5_000, 5_000)), "20s");
        // A week on 640 px: 945 s per point, rounded to 15m; the rate adds one scrape.
        let week = TimeRange {
            from_ms: 0,
            to_ms: 7 * 86_400_000,
        };
        assert_eq!(prometheus_interval_ms(week, 15_000, 640), 900_000);
        assert_eq!(format_interval(900_000), "15m");
        assert_eq!(go_duration(rate_interval_ms(900_000, 15_000)), "15m15s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
        assert_eq!(go_duration(1_500), "1.5s");
        assert_eq!(go_duration(250), "250ms");
    }

    #[test]
    fn variables_and_interval_variables_are_expanded() {
        let query = PanelQuery {
            dashboard: "d".into(),
            panel: "p".into(),
            ref_id: "A".into(),
            language: Language::PromQL,
            text: r#"sum(rate(x{service="$service", a="${service}", b="[[service]]"}[$__rate_interval])) / $__range_s + increase(y[$__range]) + z[$__interval]"#.into(),
            instant: false,
            max_data_points: 640,
            variables: BTreeMap::from([("service".to_string(), "api".to_string())]),
        };
        let range = TimeRange {
            from_ms: 1_000_123,
            to_ms: 1_601_000,
        };
        let request = prometheus_request(&query, range, 1_000).unwrap();
        assert_eq!(
            request.expr,
            r#"sum(rate(x{service="api", a="api", b="api"}[4s])) / 601 + increase(y[601s]) + z[1s]"#
        );
        assert_eq!(
            (request.start_ms, request.end_ms, request.step_ms),
            (1_000_000, 1_601_000, 1_000)
        );
        let unknown = PanelQuery {
            text: "up{a=\"$nope\"}".into(),
            ..query
        };
        assert!(prometheus_request(&unknown, range, 1_000)
            .unwrap_err()
            .contains("unknown variable $nope"));
    }

    #[test]
    fn variables_at_all_become_a_regex_alternation() {
        let templating = serde_json::json!({"list": [
            {"name": "service", "current": {"value": "$__all"},
             "options": [{"value": "$__all"}, {"value": "api"}, {"value": "web"}]},
            {"name": "level", "current": {"value": ["error", "warn"]}},
            {"name": "one", "current": {"value": "x"}}
        ]});
        let vars = dashboard_variables(&Some(templating)).unwrap();
        assert_eq!(vars["service"], "(api|web)");
        assert_eq!(vars["level"], "(error|warn)");
        assert_eq!(vars["one"], "x");
    }
}
