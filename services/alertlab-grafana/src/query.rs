//! What the queries in the files refer to: metric names in PromQL, stream-selector labels in
//! LogQL, and the SQL text, so tests can compare them with the services' real `/metrics`, the
//! labels Promtail sets, and a real PostgreSQL.

use std::collections::BTreeSet;

/// PromQL words that are never metric names: aggregation operators, functions, keywords and
/// modifiers. An identifier directly followed by `(` is a function call anyway; this list also
/// covers aggregations written with a leading `by (...)`/`without (...)` clause.
const PROMQL_RESERVED: &[&str] = &[
    // aggregation operators
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    // keywords, binary operators and modifiers (PromQL keywords are case-insensitive)
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "inf",
    "nan",
    "le",
    "start",
    "end",
    // functions
    "abs",
    "absent",
    "absent_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "holt_winters",
    "double_exponential_smoothing",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "ln",
    "log2",
    "log10",
    "minute",
    "month",
    "predict_linear",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sort",
    "sort_desc",
    "sort_by_label",
    "sort_by_label_desc",
    "sqrt",
    "time",
    "timestamp",
    "vector",
    "year",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "present_over_time",
    "mad_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "cos",
    "cosh",
    "sin",
    "sinh",
    "tan",
    "tanh",
    "deg",
    "rad",
    "pi",
    "label_values",
];

/// Keywords followed by a parenthesised list of label names (not metric names).
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// LogQL functions a metric query may start with.
const LOGQL_METRIC_FUNCTIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "stddev",
    "stdvar",
    "count",
    "topk",
    "bottomk",
    "sort",
    "sort_desc",
    "approx_topk",
    "count_over_time",
    "rate",
    "rate_counter",
    "bytes_over_time",
    "bytes_rate",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "stdvar_over_time",
    "stddev_over_time",
    "quantile_over_time",
    "first_over_time",
    "last_over_time",
    "absent_over_time",
    "label_replace",
    "vector",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Index just past the string literal that starts at `start` (`"`, `'` or a backtick).
pub(crate) fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote != '`' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// Index of the bracket closing the one at `open`, skipping string literals.
pub(crate) fn matching_close(chars: &[char], open: usize) -> usize {
    let (opening, closing) = match chars[open] {
        '(' => ('(', ')'),
        '[' => ('[', ']'),
        _ => ('{', '}'),
    };
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = skip_string(chars, i);
                continue;
            }
            c if c == opening => depth += 1,
            c if c == closing => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

/// Index just past a Grafana template variable at `start` (`$var`, `${var}`, `$__interval`).
fn skip_variable(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    if chars.get(i) == Some(&'{') {
        return matching_close(chars, i) + 1;
    }
    while i < chars.len() && is_ident_char(chars[i]) {
        i += 1;
    }
    i
}

fn next_non_space(chars: &[char], mut i: usize) -> Option<(usize, char)> {
    while i < chars.len() {
        if !chars[i].is_whitespace() {
            return Some((i, chars[i]));
        }
        i += 1;
    }
    None
}

pub(crate) fn unquote(raw: &str) -> String {
    let Some(quote) = raw.chars().next() else {
        return String::new();
    };
    let inner = &raw[quote.len_utf8()..];
    let inner = inner.strip_suffix(quote).unwrap_or(inner);
    if quote == '`' {
        inner.to_string()
    } else {
        inner
            .replace("\\\"", "\"")
            .replace("\\'", "'")
            .replace("\\\\", "\\")
    }
}

/// A label matcher inside `{...}`: name, operator and (unquoted) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub name: String,
    pub op: String,
    pub value: String,
}

/// Parses the matchers between `open` (a `{`) and its closing brace. Skips what it cannot read.
fn parse_matchers(chars: &[char], open: usize, close: usize) -> Vec<Matcher> {
    let mut out = Vec::new();
    let mut i = open + 1;
    while i < close {
        let Some((start, c)) = next_non_space(chars, i) else {
            break;
        };
        if start >= close {
            break;
        }
        if !is_ident_start(c) {
            i = start + 1;
            continue;
        }
        let mut end = start;
        while end < close && is_ident_char(chars[end]) {
            end += 1;
        }
        let name: String = chars[start..end].iter().collect();
        let Some((op_start, _)) = next_non_space(chars, end) else {
            break;
        };
        let mut op_end = op_start;
        while op_end < close && matches!(chars[op_end], '=' | '!' | '~') {
            op_end += 1;
        }
        let op: String = chars[op_start..op_end].iter().collect();
        let Some((value_start, q)) = next_non_space(chars, op_end) else {
            break;
        };
        if !matches!(q, '"' | '\'' | '`') || op.is_empty() {
            // A bare metric name inside braces, or something unexpected.
            i = end.max(start + 1);
            continue;
        }
        let value_end = skip_string(chars, value_start);
        let raw: String = chars[value_start..value_end.min(chars.len())]
            .iter()
            .collect();
        out.push(Matcher {
            name,
            op,
            value: unquote(&raw),
        });
        i = value_end;
    }
    out
}

/// Metric names used in a PromQL expression, as written (`http_request_duration_seconds_bucket`
/// stays `_bucket`). Reports identifiers used bare or before `{`/`[`, and `__name__="..."`
/// matchers; skips functions, aggregation operators, keywords, label lists of
/// `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`, label matchers, range selectors,
/// string literals, numbers and durations, and Grafana variables (`$__rate_interval`).
pub fn metric_names_in_promql(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '{' => {
                let close = matching_close(&chars, i);
                for m in parse_matchers(&chars, i, close) {
                    if m.name == "__name__" && m.op == "=" {
                        names.insert(m.value);
                    }
                }
                i = close + 1;
            }
            '[' => i = matching_close(&chars, i) + 1,
            '$' => i = skip_variable(&chars, i),
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                // Numbers, durations (5m, 1h30m) and hex literals.
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
                {
                    i += 1;
                }
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let lower = word.to_ascii_lowercase();
                let next = next_non_space(&chars, i);
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                    if let Some((open, '(')) = next {
                        i = matching_close(&chars, open) + 1;
                    }
                    continue;
                }
                if matches!(next, Some((_, '('))) || PROMQL_RESERVED.contains(&lower.as_str()) {
                    continue;
                }
                names.insert(word);
            }
            _ => i += 1,
        }
    }
    names
}

/// Label matchers of every stream selector (`{...}`) in a LogQL expression. Label filters after
/// a parser (`| json | event="x"`) are not stream labels and are not included.
pub fn loki_stream_matchers(expr: &str) -> Vec<Matcher> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '$' => i = skip_variable(&chars, i),
            '{' => {
                let close = matching_close(&chars, i);
                out.extend(parse_matchers(&chars, i, close));
                i = close + 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Label names used in the stream selectors of a LogQL expression (`{job="x", level=~"y"}` →
/// `job`, `level`).
pub fn loki_selector_labels(expr: &str) -> BTreeSet<String> {
    loki_stream_matchers(expr)
        .into_iter()
        .map(|m| m.name)
        .collect()
}

/// Whether a LogQL expression is a metric query (starts with a range or vector aggregation), the
/// only kind Grafana alerting can evaluate. A log query (`{job="x"} |= "y"`) is not.
pub fn is_loki_metric_query(expr: &str) -> bool {
    let trimmed = expr.trim_start().trim_start_matches('(').trim_start();
    let word: String = trimmed.chars().take_while(|c| is_ident_char(*c)).collect();
    if word.is_empty() {
        return false;
    }
    let rest = trimmed[word.len()..].trim_start();
    LOGQL_METRIC_FUNCTIONS.contains(&word.as_str())
        && (rest.starts_with('(') || rest.starts_with("by") || rest.starts_with("without"))
}

/// Grafana SQL macros (`$__timeFilter(...)`, ...) used in a query, by name.
pub fn sql_macros(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = sql;
    while let Some(pos) = rest.find("$__") {
        let tail = &rest[pos + 1..];
        let name: String = tail.chars().take_while(|c| is_ident_char(*c)).collect();
        out.insert(format!("${name}"));
        rest = &tail[name.len().max(1)..];
    }
    out
}

/// Expands the PostgreSQL data source's macros the dashboards use, the way Grafana does
/// (`pkg/tsdb/grafana-postgresql-datasource/macros.go`), so a test can run dashboard SQL on a
/// real PostgreSQL. `from` and `to` are the range's ends as Grafana writes them: RFC 3339 in
/// UTC, fractions of seconds only when there are any (Go's `time.RFC3339Nano`).
/// Supported: `$__timeFilter(col)`, `$__timeFrom()`, `$__timeTo()`, `$__timeGroup(col, 'iv')`,
/// `$__timeGroupAlias(col, 'iv')` (interval in s, m, h or d). Any other macro is an error.
pub fn expand_postgres_macros(sql: &str, from: &str, to: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(pos) = rest.find("$__") {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let name: String = tail[1..]
            .chars()
            .take_while(|c| is_ident_char(*c))
            .collect();
        let after_name = &tail[1 + name.len()..];
        let open = after_name
            .find('(')
            .filter(|p| after_name[..*p].trim().is_empty())
            .ok_or_else(|| format!("macro ${name} without arguments"))?;
        let close =
            closing_paren(after_name, open).ok_or_else(|| format!("macro ${name}: missing ')'"))?;
        let args: Vec<&str> = after_name[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect();
        let arg = |n: usize| {
            args.get(n)
                .copied()
                .ok_or_else(|| format!("macro ${name}: missing argument {}", n + 1))
        };
        let interval = |n: usize| -> Result<u64, String> {
            let raw = arg(n)?.trim_matches('\'');
            let digits = raw.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let unit = &raw[digits.len()..];
            let value: u64 = digits
                .parse()
                .map_err(|_| format!("macro ${name}: bad interval {raw:?}"))?;
            let factor = match unit {
                "s" | "" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                _ => return Err(format!("macro ${name}: bad interval {raw:?}")),
            };
            Ok(value * factor)
        };
        let expansion = match name.as_str() {
            "__timeFilter" => format!("{} BETWEEN '{from}' AND '{to}'", arg(0)?),
            "__timeFrom" => format!("'{from}'"),
            "__timeTo" => format!("'{to}'"),
            "__timeGroup" => {
                let secs = interval(1)?;
                format!("floor(extract(epoch from {})/{secs})*{secs}", arg(0)?)
            }
            "__timeGroupAlias" => {
                let secs = interval(1)?;
                format!(
                    "floor(extract(epoch from {})/{secs})*{secs} AS \"time\"",
                    arg(0)?
                )
            }
            other => return Err(format!("unsupported macro ${other}")),
        };
        out.push_str(&expansion);
        rest = &after_name[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Byte index of the `)` closing the `(` at byte index `open` of `text`.
fn closing_paren(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Checks the column shape Grafana alerting needs from a `format: table` SQL query: exactly one
/// numeric column, every other column a string (they become labels), no time column. Takes the
/// column names and PostgreSQL type names (`float8`, `text`, as in `pg_type.typname`).
pub fn check_sql_alert_shape(columns: &[(&str, &str)]) -> Result<(), String> {
    const NUMERIC: &[&str] = &["int2", "int4", "int8", "float4", "float8", "numeric"];
    const STRING: &[&str] = &["text", "varchar", "bpchar", "name"];
    let numeric: Vec<&str> = columns
        .iter()
        .filter(|(_, t)| NUMERIC.contains(t))
        .map(|(n, _)| *n)
        .collect();
    if numeric.len() != 1 {
        return Err(format!(
            "expected exactly one numeric column, found {} ({})",
            numeric.len(),
            numeric.join(", ")
        ));
    }
    for (name, kind) in columns {
        if !NUMERIC.contains(kind) && !STRING.contains(kind) {
            return Err(format!(
                "column {name} has type {kind}; label columns must be text (cast with ::text)"
            ));
        }
        if name.eq_ignore_ascii_case("time") {
            return Err("a column named time turns the result into a time series".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn promql_metric_names() {
        let cases: &[(&str, &[&str])] = &[
            ("up", &["up"]),
            (r#"min by (service) (up{job=~"shop-.+"})"#, &["up"]),
            (
                r#"histogram_quantile(0.95, sum by (service, le) (rate(http_request_duration_seconds_bucket{endpoint!~"/metrics|/healthz"}[1m]))) >= 0"#,
                &["http_request_duration_seconds_bucket"],
            ),
            (
                r#"(sum by (method) (rate(payments_total{status="failed"}[1m])) / clamp_min(sum by (method) (rate(payments_total[1m])), 0.001)) or (0 * sum by (method) (rate(payments_total[1m]))) or on() vector(0)"#,
                &["payments_total"],
            ),
            (
                "max(inventory_low_stock_products) or vector(0)",
                &["inventory_low_stock_products"],
            ),
            (
                "sum(rate(http_requests_total[$__rate_interval])) * 60",
                &["http_requests_total"],
            ),
            (
                "sum(increase(payment_amount_total[$__range]))",
                &["payment_amount_total"],
            ),
            (
                "a_sum / ignoring(le) group_left(x) b_count offset 5m",
                &["a_sum", "b_count"],
            ),
            (
                "sum without (instance) (x) unless on (job) y and bool z",
                &["x", "y", "z"],
            ),
            (r#"{__name__="by_name", job="x"}"#, &["by_name"]),
            (r#"label_replace(up, "dst", "$1", "src", "(.*)")"#, &["up"]),
            ("sum(x) by (service, le)", &["x"]),
            ("foo:bar:rate5m > 1e-3 AND Inf", &["foo:bar:rate5m"]),
            (r#"count_values("v", build_info)"#, &["build_info"]),
            ("x @ start() + y[5m:1m]", &["x", "y"]),
        ];
        for (expr, want) in cases {
            assert_eq!(metric_names_in_promql(expr), set(want), "{expr}");
        }
    }

    #[test]
    fn loki_labels_and_metric_queries() {
        let expr = r#"sum by (service) (count_over_time({job="alertlab", service=~"$service", level!="debug"} |= "x{y}" | json | event="payment_failed" | line_format "{{.message}}" [2m])) or vector(0)"#;
        assert_eq!(
            loki_selector_labels(expr),
            set(&["job", "level", "service"])
        );
        assert!(is_loki_metric_query(expr));
        assert!(is_loki_metric_query("sum(rate({job=\"a\"}[1m]))"));
        assert!(is_loki_metric_query("count_over_time({job=\"a\"}[1m])"));
        assert!(!is_loki_metric_query(r#"{job="a"} |= "error""#));
        assert!(!is_loki_metric_query("summary"));
        assert_eq!(
            loki_selector_labels(r#"{job = "a",service=`b`} |~ "{c=\"d\"}""#),
            set(&["job", "service"])
        );
    }

    #[test]
    fn postgres_macros() {
        let sql = "SELECT $__timeGroupAlias(order_time, '1m'), count(*) FROM orders WHERE $__timeFilter(order_time) AND x < $__timeTo() GROUP BY 1";
        assert_eq!(
            expand_postgres_macros(sql, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z").unwrap(),
            "SELECT floor(extract(epoch from order_time)/60)*60 AS \"time\", count(*) FROM orders \
             WHERE order_time BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-01T01:00:00Z' AND x < '2026-01-01T01:00:00Z' GROUP BY 1"
        );
        assert!(expand_postgres_macros("SELECT $__unixEpochFilter(t)", "a", "b").is_err());
        assert_eq!(
            sql_macros(sql),
            set(&["$__timeFilter", "$__timeGroupAlias", "$__timeTo"])
        );
    }

    #[test]
    fn sql_shape() {
        assert!(check_sql_alert_shape(&[
            ("product_name", "text"),
            ("product_id", "text"),
            ("m", "float8")
        ])
        .is_ok());
        assert!(check_sql_alert_shape(&[("n", "float8")]).is_ok());
        assert!(check_sql_alert_shape(&[("a", "float8"), ("b", "int8")]).is_err());
        assert!(check_sql_alert_shape(&[("ip", "inet"), ("b", "int8")]).is_err());
        assert!(check_sql_alert_shape(&[("time", "text"), ("b", "int8")]).is_err());
        assert!(check_sql_alert_shape(&[("name", "text")]).is_err());
    }
}
