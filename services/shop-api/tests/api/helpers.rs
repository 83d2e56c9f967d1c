use std::{net::SocketAddr, path::PathBuf, sync::LazyLock};

use serde_json::{json, Value};
use shop_api::{Application, LoginLimits, OrderLimits, Settings};
use shop_telemetry::CommonArgs;
use shop_testkit::{
    secrets::{token_file, TokenFile},
    shared_postgres,
};

pub use shop_testkit::http::{assert_error as assert_client_error, decode};

pub fn migrated_database() -> String {
    shared_postgres().create_migrated_database("shop_template", |url| {
        shop_db::run_migrations(url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// Quiet logs; with faults enabled, the test token ([`shop_testkit::faults`]).
pub fn common_args(enable_faults: bool) -> CommonArgs {
    CommonArgs {
        log_dir: PathBuf::from("logs"),
        log_level: log::LevelFilter::Off,
        enable_faults,
        fault_token_file: enable_faults.then(shop_testkit::faults::fault_token_file),
        ..CommonArgs::default()
    }
}

/// The token the payment service and the API share, one file for the test binary.
pub static PAYMENT_TOKEN: LazyLock<TokenFile> = LazyLock::new(|| token_file("payment-token"));

/// Limits no test reaches unless it means to.
pub const NO_LIMITS: OrderLimits = OrderLimits {
    per_customer: 1_000_000,
    per_ip: 1_000_000,
    global: 1_000_000,
};

/// A running payment service with the given ordinary decline rate.
pub async fn spawn_payment(decline_rate: f64) -> SocketAddr {
    let app = shop_payment::Application::build(shop_payment::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        decline_rate,
        payment_token_file: PAYMENT_TOKEN.path.clone(),
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
    /// `--trusted-proxies` (the lab passes 1).
    pub trusted_proxies: u8,
    /// The shipped defaults unless a test says otherwise.
    pub order_limits: OrderLimits,
    /// Password checks at once and logins waiting for one: the shipped defaults unless a
    /// test says otherwise.
    pub login_limits: LoginLimits,
    pub session_ttl: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            decline_rate: 0.0,
            enable_faults: true,
            payment_down: false,
            payment_url: None,
            database_url: None,
            trusted_proxies: 1,
            order_limits: OrderLimits::default(),
            login_limits: LoginLimits::default(),
            session_ttl: std::time::Duration::from_secs(3600),
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
        payment_token_file: PAYMENT_TOKEN.path.clone(),
        database_pool_size: 10,
        trusted_proxies: options.trusted_proxies,
        session_ttl: options.session_ttl,
        order_limits: options.order_limits,
        login_limits: options.login_limits,
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

/// Requests to the fault API carry its token; others go as they are.
pub fn with_fault_token(request: reqwest::RequestBuilder, path: &str) -> reqwest::RequestBuilder {
    if path.starts_with("/admin/") {
        request.header("authorization", shop_testkit::faults::fault_bearer())
    } else {
        request
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let request = self.client.get(format!("{}{path}", self.address));
        let response = with_fault_token(request, path).send().await.unwrap();
        decode(response).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let request = self.client.post(format!("{}{path}", self.address));
        let response = with_fault_token(request, path)
            .json(body)
            .send()
            .await
            .unwrap();
        decode(response).await
    }

    /// A request with headers (`authorization`, `x-forwarded-for` …).
    pub async fn post_with(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        decode(request.send().await.unwrap()).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self.client.get(format!("{}{path}", self.address));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        decode(request.send().await.unwrap()).await
    }

    /// Logs a seeded customer in (password `alertlab-demo`); the `Authorization` value of
    /// the session.
    pub async fn login(&self, email: &str) -> String {
        let (status, body) = self
            .post_json(
                "/login",
                &json!({"email": email, "password": "alertlab-demo"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        format!("Bearer {}", body["session_token"].as_str().unwrap())
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

    pub fn count(&self, sql: &str) -> i64 {
        shop_testkit::sql::count(&self.database_url, sql)
    }

    pub fn execute(&self, sql: &str) {
        shop_testkit::sql::execute(&self.database_url, sql);
    }

    pub fn stock(&self, product_id: i32) -> i64 {
        shop_testkit::sql::stock(&self.database_url, product_id)
    }
}

/// A response as the refusal tests read it: status, `Retry-After` and the JSON body.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.json().await.unwrap();
        Self {
            status,
            retry_after,
            body,
        }
    }
}
