//! `labctl audit db-role`: Grafana's read-only PostgreSQL role, connected as it is
//! (`--database-url`, `--database-password-file`), reads what the dashboards and rules need,
//! and every statement of the refused list fails for lack of privilege (SQLSTATE 42501) —
//! not for another reason, which would prove nothing. Every statement runs in a transaction
//! that is rolled back, so a write that is wrongly allowed changes nothing.

use std::{fs, path::Path, process::ExitCode, time::Duration};

use anyhow::{anyhow, Context};
use tokio_postgres::{error::SqlState, Client, Config, NoTls};

use super::{args::DbRoleArgs, verdict};
use crate::{check::datasource::pg_error, cli::Targets};

/// What the role must read: a count needs SELECT on at least one column of the table.
pub const READS: &[&str] = &[
    "SELECT count(*) FROM products",
    "SELECT count(*) FROM orders",
    "SELECT count(*) FROM login_attempts",
];

/// What must be refused: reads of what identifies or authenticates a person, and writes.
pub const REFUSED: &[&str] = &[
    "SELECT password_hash FROM customers LIMIT 1",
    "SELECT email FROM customers LIMIT 1",
    "SELECT email FROM login_attempts LIMIT 1",
    "INSERT INTO orders DEFAULT VALUES",
    "UPDATE products SET stock_level = 0",
    "DELETE FROM login_attempts",
    "TRUNCATE login_attempts",
    "CREATE TABLE intruder (id int)",
];

/// How a statement went.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ran,
    /// Refused for lack of privilege, with the server's message.
    Denied(String),
    /// Failed for another reason: the message and the SQLSTATE.
    Failed(String, String),
}

/// Runs `sql` in a transaction that is rolled back whatever happens.
pub async fn attempt(client: &mut Client, sql: &str) -> anyhow::Result<Outcome> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| anyhow!("cannot begin a transaction: {}", pg_error(&e)))?;
    let result = tx.simple_query(sql).await;
    let outcome = match result {
        Ok(_) => Outcome::Ran,
        Err(e) => match e.code() {
            Some(code) if *code == SqlState::INSUFFICIENT_PRIVILEGE => {
                Outcome::Denied(pg_error(&e))
            }
            Some(code) => Outcome::Failed(pg_error(&e), code.code().to_owned()),
            None => return Err(anyhow!("`{sql}`: {}", pg_error(&e))),
        },
    };
    tx.rollback()
        .await
        .map_err(|e| anyhow!("cannot roll back after `{sql}`: {}", pg_error(&e)))?;
    Ok(outcome)
}

/// The findings for the reads and refusals.
pub async fn audit(
    client: &mut Client,
    reads: &[String],
    refused: &[String],
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut lines = Vec::new();
    let mut findings = Vec::new();
    for sql in reads {
        match attempt(client, sql).await? {
            Outcome::Ran => lines.push(format!("reads: {sql}")),
            Outcome::Denied(m) | Outcome::Failed(m, _) => {
                findings.push(format!("`{sql}` must run but failed: {m}"))
            }
        }
    }
    for sql in refused {
        match attempt(client, sql).await? {
            Outcome::Denied(m) => lines.push(format!("refused: {sql} ({m})")),
            Outcome::Ran => findings.push(format!("`{sql}` was allowed (rolled back)")),
            Outcome::Failed(m, code) => findings.push(format!(
                "`{sql}` failed, but not for lack of privilege (SQLSTATE {code}): {m}"
            )),
        }
    }
    Ok((lines, findings))
}

/// Connects as `--database-url` says, with the password file's first line if given.
pub async fn connect(url: &str, password_file: Option<&Path>) -> anyhow::Result<Client> {
    let mut config: Config = url
        .parse()
        .map_err(|e| anyhow!("--database-url is not a PostgreSQL URL: {e}"))?;
    if let Some(path) = password_file {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read --database-password-file {}", path.display()))?;
        config.password(text.lines().next().unwrap_or("").trim());
    }
    config.connect_timeout(Duration::from_secs(5));
    config.application_name("labctl audit db-role");
    let user = config.get_user().unwrap_or("?").to_owned();
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| anyhow!("cannot connect as {user}: {}", pg_error(&e)))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
        .batch_execute("SET statement_timeout = '10s'")
        .await
        .map_err(|e| anyhow!("{}", pg_error(&e)))?;
    Ok(client)
}

pub async fn command(targets: &Targets, args: &DbRoleArgs) -> anyhow::Result<ExitCode> {
    let reads: Vec<String> = if args.read.is_empty() {
        READS.iter().map(|s| s.to_string()).collect()
    } else {
        args.read.clone()
    };
    let refused: Vec<String> = if args.refuse.is_empty() {
        REFUSED.iter().map(|s| s.to_string()).collect()
    } else {
        args.refuse.clone()
    };
    let mut client = connect(
        &targets.database_url,
        targets.database_password_file.as_deref(),
    )
    .await?;
    let (lines, findings) = audit(&mut client, &reads, &refused).await?;
    for line in lines {
        println!("{line}");
    }
    verdict("db-role", &findings)
}
