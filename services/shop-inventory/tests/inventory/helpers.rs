use std::{path::PathBuf, sync::LazyLock, time::Duration};

use serde_json::Value;
use shop_inventory::{Application, Settings};
use shop_telemetry::CommonArgs;
use shop_testkit::{
    secrets::{token_file, TokenFile},
    shared_postgres,
};

/// The operator (fault) token the tests' services read.
pub static OPERATOR_TOKEN: LazyLock<TokenFile> = LazyLock::new(|| token_file("operator-token"));

pub fn migrated_database() -> String {
    shared_postgres().create_migrated_database("shop_template", |url| {
        shop_db::run_migrations(url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// Sent with every request of [`TestApp::request`], as labctl sends it.
    pub authorization: Option<String>,
}

/// The service with a 1 s refresh interval and the operator token.
pub async fn spawn_app_on(database_url: String) -> TestApp {
    spawn_with_token(database_url, true).await
}

/// The service with a 1 s refresh interval, with or without an operator token.
pub async fn spawn_with_token(database_url: String, operator_token: bool) -> TestApp {
    let app = Application::build(Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url,
        refresh_interval: Duration::from_secs(1),
        database_pool_size: 4,
        common: CommonArgs {
            log_dir: PathBuf::from("logs"),
            log_level: log::LevelFilter::Off,
            enable_faults: operator_token,
            fault_token_file: operator_token.then(|| OPERATOR_TOKEN.path.clone()),
            ..CommonArgs::default()
        },
    })
    .await
    .expect("the inventory service starts");
    let address = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        client: reqwest::Client::new(),
        authorization: operator_token.then(|| format!("Bearer {}", OPERATOR_TOKEN.token)),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(migrated_database()).await
}

impl TestApp {
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let authorization = self.authorization.clone();
        self.request_as(method, path, body, authorization.as_deref())
            .await
    }

    /// A request with this `Authorization` header, or none.
    pub async fn request_as(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        authorization: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}")),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until `check` holds, polling; fails after `seconds`.
    pub async fn eventually<F, Fut>(&self, seconds: u64, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
        while !check().await {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for: {what}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The value of the metric line starting with `prefix` (name and labels), if any.
pub fn metric(metrics: &str, prefix: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(prefix)
            .and_then(|rest| rest.trim().parse().ok())
    })
}
