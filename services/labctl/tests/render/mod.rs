//! Every dashboard panel drawn against the stack test's Prometheus and PostgreSQL, as Grafana
//! would draw it over a range that starts at hh:31: each PromQL and SQL query must return data
//! (a series with a number, or a row) while the shop runs healthy traffic. LogQL panels cannot
//! run here (no Loki) and are reported as NOT RUN.
//!
//! The queries are expanded by `alertlab_grafana::render` (Grafana's variables, intervals and
//! SQL macros); SQL runs as Grafana's read-only role, so a panel reading a column the role may
//! not read fails here too.
//!
//! "Starts at hh:31" is on the database's clock, the one its hour buckets are cut on: the SQL
//! session's time zone is set so that its clock reads hh:40 now, and the range runs from hh:31
//! of that hour to now. A range inside one hour is where a panel that filters its buckets by
//! their start, instead of by their overlap, shows nothing (at any wall-clock time).

use alertlab_grafana::{
    render::{self, PanelQuery, TimeRange},
    Language,
};
use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};
use serde_json::Value;
use tokio_postgres::{NoTls, SimpleQueryMessage};

/// Minute the database's clock reads when the panels are drawn; the range starts at its :31.
const CLOCK_MINUTE: i64 = 40;

/// The range and the SQL session's UTC offset in minutes.
pub struct Window {
    pub range: TimeRange,
    pub from: String,
    pub to: String,
    pub offset_minutes: i64,
}

/// A range from hh:31 to `now` on a database clock that reads hh:40 at `now`.
pub fn window(now: DateTime<Utc>) -> Window {
    let now = now.with_nanosecond(0).unwrap();
    let offset_minutes = (CLOCK_MINUTE - i64::from(now.minute())).rem_euclid(60);
    let local = now + Duration::minutes(offset_minutes);
    let local_from = local.with_minute(31).unwrap().with_second(0).unwrap();
    let from = local_from - Duration::minutes(offset_minutes);
    // Grafana writes the macros' times as RFC 3339 in UTC (Go's RFC3339Nano).
    let format = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    Window {
        range: TimeRange {
            from_ms: from.timestamp_millis(),
            to_ms: now.timestamp_millis(),
        },
        from: format(from),
        to: format(now),
        offset_minutes,
    }
}

/// What one panel query returned.
pub struct Drawn {
    pub query: PanelQuery,
    /// Series with a number (PromQL) or rows (SQL); `None` when it did not run (LogQL).
    pub found: Option<usize>,
    pub error: Option<String>,
}

/// Draws every panel query: PromQL on Prometheus (`scrape_ms` is the data source's
/// timeInterval, the stack's scrape interval), SQL on PostgreSQL at `database_url`.
pub async fn draw_every_panel(
    queries: Vec<PanelQuery>,
    window: &Window,
    prometheus_url: &str,
    scrape_ms: i64,
    database_url: &str,
) -> Vec<Drawn> {
    let (client, connection) = tokio_postgres::connect(database_url, NoTls)
        .await
        .expect("Grafana's read-only role connects");
    tokio::spawn(connection);
    let offset = window.offset_minutes;
    client
        .batch_execute(&format!(
            "SET TIME ZONE INTERVAL '+{:02}:{:02}' HOUR TO MINUTE",
            offset / 60,
            offset % 60
        ))
        .await
        .unwrap();
    // The range starts at :31 of the database's clock, and ends in the same hour.
    let check = client
        .simple_query(&format!(
            "SELECT to_char('{}'::timestamptz, 'HH24:MI') || ' .. ' || to_char('{}'::timestamptz, 'HH24:MI')",
            window.from, window.to
        ))
        .await
        .unwrap();
    let shown = check.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    });
    let shown = shown.unwrap_or_default();
    assert!(
        shown.get(2..5) == Some(":31") && shown.get(0..2) == shown.get(9..11),
        "the range is not hh:31 .. hh:mm of one hour on the database's clock: {shown}"
    );
    eprintln!(
        "render: range {} .. {} ({shown} on the database's clock, UTC{:+}min)",
        window.from, window.to, offset
    );

    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for query in queries {
        let (found, error) = match query.language {
            Language::LogQL => (None, None),
            Language::PromQL => {
                match prometheus(&http, prometheus_url, &query, window.range, scrape_ms).await {
                    Ok(n) => (Some(n), None),
                    Err(e) => (None, Some(e)),
                }
            }
            Language::Sql => match render::postgres_sql(&query, &window.from, &window.to) {
                Err(e) => (None, Some(e)),
                Ok(sql) => match client.simple_query(&sql).await {
                    Ok(messages) => (
                        Some(
                            messages
                                .iter()
                                .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                                .count(),
                        ),
                        None,
                    ),
                    Err(e) => {
                        let reason = e
                            .as_db_error()
                            .map(|db| db.message().to_string())
                            .unwrap_or_else(|| e.to_string());
                        (None, Some(format!("{reason}: {sql}")))
                    }
                },
            },
        };
        out.push(Drawn {
            query,
            found,
            error,
        });
    }
    out
}

/// Runs a PromQL panel query as Grafana's Prometheus data source does; returns how many
/// series have at least one number (not NaN).
async fn prometheus(
    http: &reqwest::Client,
    base: &str,
    query: &PanelQuery,
    range: TimeRange,
    scrape_ms: i64,
) -> Result<usize, String> {
    let request = render::prometheus_request(query, range, scrape_ms)?;
    let seconds = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let response = if request.instant {
        http.post(format!("{base}/api/v1/query"))
            .form(&[
                ("query", request.expr.clone()),
                ("time", seconds(request.end_ms)),
            ])
            .send()
            .await
    } else {
        http.post(format!("{base}/api/v1/query_range"))
            .form(&[
                ("query", request.expr.clone()),
                ("start", seconds(request.start_ms)),
                ("end", seconds(request.end_ms)),
                ("step", seconds(request.step_ms)),
            ])
            .send()
            .await
    };
    let body: Value = response
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(format!("{}: {}", body["error"], request.expr));
    }
    let is_number = |v: &Value| {
        v.get(1)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|x| !x.is_nan())
    };
    let results = body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(results
        .iter()
        .filter(|series| {
            is_number(&series["value"])
                || series["values"]
                    .as_array()
                    .is_some_and(|values| values.iter().any(is_number))
        })
        .count())
}

/// The record of every panel, one line each.
pub fn table(drawn: &[Drawn]) -> String {
    let mut out = String::from(
        "DASHBOARD            PANEL                                     REF  DATA    RESULT\n",
    );
    for d in drawn {
        let result = match (&d.found, &d.error) {
            (_, Some(e)) => format!("ERROR {e}"),
            (Some(0), None) => "NO DATA".to_string(),
            (Some(n), None) => match d.query.language {
                Language::Sql => format!("{n} row(s)"),
                _ => format!("{n} series"),
            },
            (None, None) => "NOT RUN (LogQL: no Loki here)".to_string(),
        };
        let language = match d.query.language {
            Language::PromQL => "promql",
            Language::LogQL => "logql",
            Language::Sql => "sql",
        };
        out.push_str(&format!(
            "{:<20} {:<41} {:<4} {:<7} {result}\n",
            d.query.dashboard, d.query.panel, d.query.ref_id, language
        ));
    }
    out
}
