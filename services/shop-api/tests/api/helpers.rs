use std::{net::SocketAddr, path::PathBuf};

use diesel::{connection::SimpleConnection, prelude::*, sql_query, sql_types::BigInt};
use serde_json::Value;
use shop_api::{Application, Settings};
use shop_telemetry::CommonArgs;
use shop_testkit::shared_postgres;

pub fn migrated_database() -> String {
    shared_postgres().create_migrated_database("shop_template", |url| {
        shop_db::run_migrations(url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

pub fn common_args(enable_faults: bool) -> CommonArgs {
    CommonArgs {
        log_dir: PathBuf::from("logs"),
        log_level: log::LevelFilter::Off,
        enable_faults,
        fault_token_file: None,
    }
}

/// A running payment service with the given ordinary decline rate.
pub async fn spawn_payment(decline_rate: f64) -> SocketAddr {
    let app = shop_payment::Application::build(shop_payment::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        decline_rate,
        common: common_args(true),
    })
    .await
    .unwrap();
    let addr = app.local_addr();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    addr
}

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub payment: Option<SocketAddr>,
    pub client: reqwest::Client,
}

pub struct Options {
    pub decline_rate: f64,
    pub enable_faults: bool,
    /// Point the API at a payment service that is not there.
    pub payment_down: bool,
    /// Point the API at this payment service instead of starting one.
    pub payment_url: Option<String>,
    pub database_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            decline_rate: 0.0,
            enable_faults: true,
            payment_down: false,
            payment_url: None,
            database_url: None,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let database_url = options.database_url.unwrap_or_else(migrated_database);
    let (payment, payment_url) = if let Some(url) = options.payment_url {
        (None, url)
    } else if options.payment_down {
        (None, format!("http://127.0.0.1:{}", closed_port()))
    } else {
        let addr = spawn_payment(options.decline_rate).await;
        (Some(addr), format!("http://{addr}"))
    };
    let app = Application::build(Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone(),
        payment_url,
        payment_timeout: std::time::Duration::from_secs(5),
        database_pool_size: 10,
        common: common_args(options.enable_faults),
    })
    .await
    .expect("the API starts");
    let address = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        database_url,
        payment,
        client: reqwest::Client::new(),
    }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestApp {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        decode(response).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .unwrap();
        decode(response).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        decode(response).await
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

    pub fn db(&self) -> PgConnection {
        PgConnection::establish(&self.database_url).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        sql_query(sql)
            .get_result::<Count>(&mut self.db())
            .unwrap()
            .n
    }

    pub fn execute(&self, sql: &str) {
        self.db().batch_execute(sql).unwrap();
    }

    pub fn stock(&self, product_id: i32) -> i64 {
        self.count(&format!(
            "SELECT stock_level::bigint AS n FROM products WHERE id = {product_id}"
        ))
    }
}

/// Status and JSON body; a non-JSON body fails the test (every answer must be JSON).
pub async fn decode(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: not JSON ({content_type}): {text}"));
    (status, body)
}

/// Asserts a 4xx with a JSON error message.
pub fn assert_client_error(status: u16, body: &Value, expected_status: u16, mentions: &str) {
    assert_eq!(status, expected_status, "{body}");
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {body}"));
    assert!(
        message.to_lowercase().contains(&mentions.to_lowercase()),
        "`{message}` should mention `{mentions}`"
    );
}
