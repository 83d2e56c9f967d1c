//! The client side of `labctl scenario serve`: with `--scenario-url`, `scenario start`,
//! `stop` and `stop-all` ask that endpoint to run the scenarios where the lab is (the `nix run`
//! VM), presenting the token of `--scenario-token-file`.

use std::{process::ExitCode, time::Duration};

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::Scenario;
use crate::{cli::Targets, guard::Token, http};

const WHAT: &str = "labctl scenario serve";

pub struct RemoteScenarios {
    client: reqwest::Client,
    base: String,
    token: Token,
}

#[derive(Debug, Deserialize)]
pub struct Started {
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
struct Stopped {
    reverted: String,
}

impl RemoteScenarios {
    /// The endpoint of `--scenario-url`, or None without it.
    pub fn from_targets(targets: &Targets) -> anyhow::Result<Option<Self>> {
        let Some(url) = &targets.scenario_url else {
            return Ok(None);
        };
        http::check_url("--scenario-url", url)?;
        let file = targets.scenario_token_file.as_deref().ok_or_else(|| {
            anyhow!("--scenario-url needs --scenario-token-file (the endpoint's bearer token)")
        })?;
        Ok(Some(Self {
            // Starting a scenario waits for it to be in force (a few requests in the lab).
            client: http::client(Duration::from_secs(targets.timeout.max(1) * 4)),
            base: http::base(url),
            token: Token::from_file("--scenario-token-file", file)?,
        }))
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<T> {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.token.as_str())
            .json(&body);
        let response = http::send(WHAT, &self.base, request).await?;
        let response = http::expect_success(WHAT, &self.base, path, response).await?;
        http::json(WHAT, &self.base, path, response).await
    }

    pub async fn start(&self, scenario: Scenario, duration: Duration) -> anyhow::Result<Started> {
        let seconds = duration.as_secs_f64().ceil().clamp(1.0, 86_400.0) as u64;
        self.post(
            &format!("/scenarios/{}/start", scenario.name()),
            json!({ "seconds": seconds }),
        )
        .await
    }

    pub async fn stop(&self, scenario: Scenario) -> anyhow::Result<String> {
        let stopped: Stopped = self
            .post(&format!("/scenarios/{}/stop", scenario.name()), json!({}))
            .await?;
        Ok(stopped.reverted)
    }

    /// `scenario start` through the endpoint: in the foreground it waits for the duration
    /// and stops the scenario early on Ctrl-C; detached it returns once the scenario is in
    /// force (the endpoint ends it at its time).
    pub async fn start_command(
        &self,
        scenario: Scenario,
        duration: Duration,
        detach: bool,
    ) -> anyhow::Result<ExitCode> {
        let started = self.start(scenario, duration).await?;
        println!(
            "{}: started by {} ({}): {}; reverts by itself at {}",
            scenario.name(),
            WHAT,
            self.base,
            started.description,
            started.ends_at.format("%H:%M:%S UTC")
        );
        if detach {
            return Ok(ExitCode::SUCCESS);
        }
        let stopped_early = tokio::select! {
            _ = tokio::time::sleep(duration) => false,
            _ = crate::signals::received() => true,
        };
        if stopped_early {
            let what = self.stop(scenario).await?;
            println!("{}: stopped: {what}", scenario.name());
        } else {
            println!(
                "{}: its duration ran out; the lab reverts it",
                scenario.name()
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    pub async fn stop_all(&self) -> anyhow::Result<ExitCode> {
        let mut failed = Vec::new();
        for scenario in Scenario::ALL {
            match self.stop(scenario).await {
                Ok(what) => println!("{}: {what}", scenario.name()),
                Err(err) => {
                    println!("{}: FAILED: {}", scenario.name(), http::one_line(&err));
                    failed.push(scenario.name());
                }
            }
        }
        if failed.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            Err(anyhow!("could not revert: {}", failed.join(", ")))
        }
    }
}
