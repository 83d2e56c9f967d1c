use std::{net::SocketAddr, path::PathBuf, sync::LazyLock, time::Duration};

use serde_json::Value;
use shop_frontend::{Application, Settings};
use shop_telemetry::CommonArgs;
use shop_testkit::{
    secrets::{token_file, TokenFile},
    shared_postgres,
};

/// The token the payment service and the API share.
static PAYMENT_TOKEN: LazyLock<TokenFile> = LazyLock::new(|| token_file("payment-token"));
use tokio::{sync::oneshot, task::JoinHandle};

pub use shop_testkit::http::{assert_error, decode, sample};

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

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running payment service with the given ordinary decline rate.
pub async fn spawn_payment(decline_rate: f64) -> SocketAddr {
    let app = shop_payment::Application::build(shop_payment::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        decline_rate,
        payment_token_file: PAYMENT_TOKEN.path.clone(),
        common: common_args(false),
    })
    .await
    .unwrap();
    let addr = app.local_addr();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    addr
}

/// A running API (with its payment service and a fresh database) that a test can stop.
pub struct Backend {
    pub api_address: String,
    pub database_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_backend(decline_rate: f64) -> Backend {
    let database_url = migrated_database();
    let payment = spawn_payment(decline_rate).await;
    let api = shop_api::Application::build(shop_api::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone(),
        payment_url: format!("http://{payment}"),
        payment_timeout: Duration::from_secs(5),
        payment_token_file: PAYMENT_TOKEN.path.clone(),
        database_pool_size: 10,
        // The frontend is the one proxy in front of the API, as in the lab.
        trusted_proxies: 1,
        session_ttl: Duration::from_secs(3600),
        order_limits: shop_api::OrderLimits::default(),
        login_limits: shop_api::LoginLimits::default(),
        common: common_args(true),
    })
    .await
    .expect("the API starts");
    let api_address = format!("http://{}", api.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(api.run_until_stopped(async move {
        let _ = stopped.await;
        Ok("test")
    }));
    Backend {
        api_address,
        database_url,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Backend {
    /// Stops the API and waits until it no longer listens.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

pub struct Options {
    pub decline_rate: f64,
    /// Point the frontend at an API that is not there.
    pub api_down: bool,
    pub session_timeout: u64,
    pub max_sessions: u32,
    pub api_timeout: u64,
    pub enable_faults: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            decline_rate: 0.0,
            api_down: false,
            session_timeout: 1800,
            max_sessions: shop_frontend::MAX_SESSIONS,
            api_timeout: 5,
            enable_faults: true,
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub backend: Option<Backend>,
    /// Keeps the session cookie, like a browser.
    pub client: reqwest::Client,
}

/// A page as a browser gets it.
pub struct Page {
    pub status: u16,
    pub content_type: String,
    pub set_cookie: Option<String>,
    pub text: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let (backend, api_url) = if options.api_down {
        (None, format!("http://127.0.0.1:{}", closed_port()))
    } else {
        let backend = spawn_backend(options.decline_rate).await;
        let url = backend.api_address.clone();
        (Some(backend), url)
    };
    let app = Application::build(Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_url,
        api_timeout: options.api_timeout,
        session_timeout: options.session_timeout,
        max_sessions: options.max_sessions,
        common: common_args(options.enable_faults),
    })
    .await
    .expect("the frontend starts");
    let address = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        backend,
        client: browser(),
    }
}

/// A client with a cookie store.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `GET path` with this app's browser.
    pub async fn page(&self, path: &str) -> Page {
        self.page_with(&self.client, path).await
    }

    pub async fn page_with(&self, client: &reqwest::Client, path: &str) -> Page {
        let response = client.get(self.url(path)).send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let status = response.status().as_u16();
        let content_type = header("content-type").unwrap_or_default();
        let set_cookie = header("set-cookie");
        let text = response.text().await.unwrap();
        Page {
            status,
            content_type,
            set_cookie,
            text,
        }
    }

    /// `GET path` expecting JSON.
    /// Requests to the fault API carry its token; others go as they are.
    fn with_fault_token(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> reqwest::RequestBuilder {
        if path.starts_with("/admin/") {
            request.header("authorization", shop_testkit::faults::fault_bearer())
        } else {
            request
        }
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let request = self.with_fault_token(self.client.get(self.url(path)), path);
        decode(request.send().await.unwrap()).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        decode(
            self.with_fault_token(self.client.post(self.url(path)), path)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &'static str,
    ) -> (u16, Value) {
        decode(
            self.client
                .post(self.url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        decode(self.client.delete(self.url(path)).send().await.unwrap()).await
    }

    pub async fn add_to_cart(&self, product_id: i32, quantity: i32) -> Value {
        let (status, body) = self
            .post_json(
                "/cart/items",
                &serde_json::json!({"product_id": product_id, "quantity": quantity}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Logs a seeded customer in at the API; the `Authorization` value of the session.
    pub async fn login(&self, email: &str) -> String {
        let (status, body) = decode(
            reqwest::Client::new()
                .post(format!("{}/login", self.backend().api_address))
                .json(&serde_json::json!({"email": email, "password": "alertlab-demo"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        format!("Bearer {}", body["session_token"].as_str().unwrap())
    }

    /// `POST path` with an `Authorization` header.
    pub async fn post_json_as(
        &self,
        path: &str,
        body: &Value,
        authorization: &str,
    ) -> (u16, Value) {
        decode(
            self.client
                .post(self.url(path))
                .header("authorization", authorization)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub fn backend(&self) -> &Backend {
        self.backend.as_ref().expect("this app has an API")
    }

    pub fn count(&self, sql: &str) -> i64 {
        shop_testkit::sql::count(&self.backend().database_url, sql)
    }

    pub fn execute(&self, sql: &str) {
        shop_testkit::sql::execute(&self.backend().database_url, sql);
    }

    pub fn stock(&self, product_id: i32) -> i64 {
        shop_testkit::sql::stock(&self.backend().database_url, product_id)
    }

    pub fn orders(&self, status: &str) -> i64 {
        self.count(&format!(
            "SELECT count(*) AS n FROM orders WHERE order_status = '{status}'"
        ))
    }
}
