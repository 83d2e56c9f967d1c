//! The three data sources, queried the way Grafana's alerting queries them: PromQL and LogQL
//! as instant queries at "now", SQL in table format (one numeric column plus string label
//! columns, one instance per row).

use std::{fs, path::Path, time::Duration};

use alertlab_grafana::query::{check_sql_alert_shape, expand_postgres_macros};
use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::{config::Host, Client, Config, NoTls, SimpleQueryMessage};

use super::expr::{Labels, QueryResult, Series};
use crate::http;

// ------------------------------------------------------------------------------------------
// Prometheus and Loki

/// An instant-query API: Prometheus (`/api/v1/query`) or Loki (`/loki/api/v1/query`).
#[derive(Debug, Clone)]
pub struct InstantApi {
    client: reqwest::Client,
    pub what: &'static str,
    pub base: String,
    path: &'static str,
    nanosecond_time: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiAnswer {
    #[serde(default)]
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiData {
    result_type: String,
    #[serde(default)]
    result: Value,
}

impl InstantApi {
    pub fn prometheus(client: reqwest::Client, base: &str) -> Self {
        Self {
            client,
            what: "Prometheus",
            base: http::base(base),
            path: "/api/v1/query",
            nanosecond_time: false,
        }
    }

    pub fn loki(client: reqwest::Client, base: &str) -> Self {
        Self {
            client,
            what: "Loki",
            base: http::base(base),
            path: "/loki/api/v1/query",
            nanosecond_time: true,
        }
    }

    /// Answers at all (a query of `vector(1)`): for the preflight.
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self.query("vector(1)", Utc::now()).await {
            QueryResult::Data(_) => Ok(()),
            QueryResult::Error(e) => Err(anyhow!("{e}")),
        }
    }

    pub async fn query(&self, expr: &str, at: DateTime<Utc>) -> QueryResult {
        let time = if self.nanosecond_time {
            at.timestamp_nanos_opt().unwrap_or_default().to_string()
        } else {
            format!("{:.3}", at.timestamp_millis() as f64 / 1000.0)
        };
        let request = self
            .client
            .get(format!("{}{}", self.base, self.path))
            .query(&[("query", expr), ("time", time.as_str())]);
        let response = match http::send(self.what, &self.base, request).await {
            Ok(r) => r,
            Err(e) => return QueryResult::Error(e.to_string()),
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let answer: ApiAnswer = match serde_json::from_str(&text) {
            Ok(a) => a,
            Err(_) => {
                return QueryResult::Error(format!(
                    "{} at {} answered HTTP {}: {}",
                    self.what,
                    self.base,
                    status.as_u16(),
                    http::excerpt(&text)
                ))
            }
        };
        if answer.status != "success" {
            return QueryResult::Error(format!(
                "{} {}: {}",
                self.what,
                answer.error_type.unwrap_or_else(|| "error".into()),
                answer.error.unwrap_or_else(|| http::excerpt(&text))
            ));
        }
        match answer.data {
            Some(data) => parse_instant(&data.result_type, &data.result)
                .map(QueryResult::Data)
                .unwrap_or_else(QueryResult::Error),
            None => QueryResult::Error(format!("{} answered without data", self.what)),
        }
    }
}

fn sample_value(v: &Value) -> Result<f64, String> {
    let text = v
        .get(1)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("sample without a value: {v}"))?;
    text.parse::<f64>()
        .map_err(|_| format!("sample value `{text}` is not a number"))
}

fn metric_labels(m: Option<&Value>) -> Labels {
    m.and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter(|(k, _)| k.as_str() != "__name__")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// An instant-query result (`vector`, `scalar`, or `matrix` whose last sample counts).
pub fn parse_instant(result_type: &str, result: &Value) -> Result<Vec<Series>, String> {
    match result_type {
        "vector" => result
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                Ok(Series {
                    labels: metric_labels(item.get("metric")),
                    value: Some(sample_value(item.get("value").unwrap_or(&Value::Null))?),
                })
            })
            .collect(),
        "scalar" => Ok(vec![Series {
            labels: Labels::new(),
            value: Some(sample_value(result)?),
        }]),
        "matrix" => result
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let last = item
                    .get("values")
                    .and_then(Value::as_array)?
                    .last()?
                    .clone();
                Some(sample_value(&last).map(|v| Series {
                    labels: metric_labels(item.get("metric")),
                    value: Some(v),
                }))
            })
            .collect(),
        other => Err(format!("result type `{other}` cannot be alerted on")),
    }
}

// ------------------------------------------------------------------------------------------
// PostgreSQL

/// The shop database, as Grafana's read-only role sees it.
pub struct Postgres {
    config: Config,
    pub display: String,
    client: Mutex<Option<Client>>,
}

impl Postgres {
    /// From `--database-url` and an optional password file.
    pub fn new(url: &str, password_file: Option<&Path>) -> anyhow::Result<Self> {
        let mut config: Config = url
            .parse()
            .map_err(|e| anyhow!("--database-url is not a PostgreSQL URL: {e}"))?;
        if let Some(path) = password_file {
            let text = fs::read_to_string(path).with_context(|| {
                format!("cannot read --database-password-file {}", path.display())
            })?;
            config.password(text.lines().next().unwrap_or("").trim());
        }
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("labctl");
        let display = describe(&config);
        Ok(Self {
            config,
            display,
            client: Mutex::new(None),
        })
    }

    async fn connect(&self) -> anyhow::Result<Client> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| anyhow!("cannot connect to {}: {}", self.display, pg_error(&e)))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        // The rules only read; make sure of it, and bound every statement.
        client
            .batch_execute("SET default_transaction_read_only = on; SET statement_timeout = '10s'")
            .await
            .map_err(|e| anyhow!("{}: {}", self.display, pg_error(&e)))?;
        Ok(client)
    }

    /// Connects (for the preflight).
    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect().await?);
        }
        Ok(())
    }

    /// Runs an alert query in table format. `from`/`to` expand Grafana's time macros.
    pub async fn query(&self, sql: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> QueryResult {
        let sql = if sql.contains("$__") {
            match expand_postgres_macros(sql, &from.to_rfc3339(), &to.to_rfc3339()) {
                Ok(s) => s,
                Err(e) => return QueryResult::Error(e),
            }
        } else {
            sql.to_owned()
        };
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            match self.connect().await {
                Ok(c) => *guard = Some(c),
                Err(e) => return QueryResult::Error(e.to_string()),
            }
        }
        let Some(client) = guard.as_ref() else {
            return QueryResult::Error("no connection".into());
        };
        let result = run_table(client, &sql).await;
        if client.is_closed() {
            *guard = None;
        }
        result.unwrap_or_else(QueryResult::Error)
    }
}

async fn run_table(client: &Client, sql: &str) -> Result<QueryResult, String> {
    // The statement's column types come from a prepare; the values from the simple-query
    // protocol, as text (so NUMERIC needs no decoder).
    let statement = client.prepare(sql).await.map_err(|e| pg_error(&e))?;
    let columns: Vec<(String, String)> = statement
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.type_().name().to_owned()))
        .collect();
    let shape: Vec<(&str, &str)> = columns
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    if let Err(e) = check_sql_alert_shape(&shape) {
        return Ok(QueryResult::Error(format!(
            "input data must be a number table: {e}"
        )));
    }
    let number_column = columns
        .iter()
        .position(|(_, t)| {
            ["int2", "int4", "int8", "float4", "float8", "numeric"].contains(&t.as_str())
        })
        .unwrap_or(0);
    let messages = client.simple_query(sql).await.map_err(|e| pg_error(&e))?;
    let mut out = Vec::new();
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            let mut labels = Labels::new();
            let mut value = None;
            for (i, (name, _)) in columns.iter().enumerate() {
                let cell = row.try_get(i).map_err(|e| pg_error(&e))?;
                if i == number_column {
                    value = match cell {
                        None => None,
                        Some(text) => Some(
                            text.parse::<f64>()
                                .map_err(|_| format!("column {name}: `{text}` is not a number"))?,
                        ),
                    };
                } else {
                    labels.insert(name.clone(), cell.unwrap_or_default().to_owned());
                }
            }
            out.push(Series { labels, value });
        }
    }
    Ok(QueryResult::Data(out))
}

/// `PostgreSQL at 127.0.0.1:5432/shop as grafana_ro` (never the password).
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "PostgreSQL at {host}:{port}/{} as {}",
        config.get_dbname().unwrap_or("?"),
        config.get_user().unwrap_or("?")
    )
}

/// A PostgreSQL error in one line: the server's message, or the innermost cause.
pub fn pg_error(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return db.message().to_owned();
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text = match cause.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused".into()
            }
            _ => cause.to_string(),
        };
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn instant_results_become_series() {
        let vector = json!([
            {"metric": {"service": "api"}, "value": [1700000000.0, "0.5"]},
            {"metric": {"__name__": "up", "service": "web"}, "value": [1700000000.0, "NaN"]}
        ]);
        let s = parse_instant("vector", &vector).unwrap();
        assert_eq!(s[0], Series::new(&[("service", "api")], Some(0.5)));
        assert_eq!(
            s[1].labels,
            Labels::from([("service".into(), "web".into())])
        );
        assert!(s[1].value.unwrap().is_nan());
        assert_eq!(
            parse_instant("scalar", &json!([1700000000.0, "+Inf"])).unwrap()[0].value,
            Some(f64::INFINITY)
        );
        assert!(parse_instant("streams", &json!([])).is_err());
    }

    #[test]
    fn database_urls_are_described_without_passwords() {
        let pg = Postgres::new("postgres://grafana_ro:secret@127.0.0.1:5433/shop", None).unwrap();
        assert_eq!(
            pg.display,
            "PostgreSQL at 127.0.0.1:5433/shop as grafana_ro"
        );
        let sock = Postgres::new(
            "postgres:///shop?host=/run/postgresql&user=grafana_ro",
            None,
        )
        .unwrap();
        assert_eq!(
            sock.display,
            "PostgreSQL at /run/postgresql:5432/shop as grafana_ro"
        );
        assert!(Postgres::new("mysql:://x", None).is_err());
    }
}
