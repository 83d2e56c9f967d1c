//! Failure drills on real parts: the `shop-api` binary (or the service in-process where a
//! dependency must be stopped and started again), a real PostgreSQL and a real payment
//! service, with the failure injected while the shop is in use.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU8, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use shop_testkit::TestPostgres;
use tokio::{sync::oneshot, task::JoinHandle};

use crate::helpers::{
    closed_port, common_args, migrated_database, spawn_app_with, spawn_payment, Options, TestApp,
    NO_LIMITS, PAYMENT_TOKEN,
};

const BINARY: &str = env!("CARGO_BIN_EXE_shop-api");

/// The `shop-api` binary, killed when dropped.
struct ApiProcess {
    child: Child,
    base: String,
    log_dir: PathBuf,
}

impl ApiProcess {
    async fn start(database_url: &str, payment: SocketAddr, log_dir: &Path) -> Self {
        let port = closed_port();
        let child = Command::new(BINARY)
            .args(["--database-url", database_url])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--payment-url", &format!("http://{payment}")])
            .arg("--payment-token-file")
            .arg(&PAYMENT_TOKEN.path)
            // The drills order faster than any one client may (the limits have their tests).
            .args([
                "--order-limit-per-ip",
                "1000000",
                "--order-limit-global",
                "1000000",
            ])
            .arg("--log-dir")
            .arg(log_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut api = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log_dir: log_dir.to_owned(),
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        while client
            .get(format!("{}/healthz", api.base))
            .send()
            .await
            .is_err()
        {
            api.assert_running();
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "shop-api did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        api
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("shop-api exited: {status}");
        }
    }

    /// SIGTERM, and a clean exit.
    fn stop(mut self) {
        self.assert_running();
        let status = shop_testkit::process::terminate(&mut self.child);
        assert!(status.success(), "shop-api stopped with {status}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.join("api.log")).unwrap_or_default()
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shop-api-drill-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn events(log: &str, event: &str) -> usize {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["event"] == event)
        .count()
}

/// (phase, request kind, status) → count; status 0 is a transport error.
type Answers = BTreeMap<(u8, &'static str, u16), u64>;

/// Orders and catalog reads from several clients, counting answers by phase.
struct Traffic {
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Answers>>,
    problems: Arc<Mutex<Vec<String>>>,
    workers: Vec<JoinHandle<()>>,
}

const BEFORE: u8 = 0;
const OUTAGE: u8 = 1;
const AFTER: u8 = 2;

impl Traffic {
    fn start(base: &str, order_clients: usize, read_clients: usize) -> Self {
        let traffic = Self {
            phase: Arc::new(AtomicU8::new(BEFORE)),
            stop: Arc::new(AtomicBool::new(false)),
            answers: Arc::default(),
            problems: Arc::default(),
            workers: Vec::new(),
        };
        let mut workers = Vec::new();
        for n in 0..order_clients + read_clients {
            let kind = if n < order_clients { "order" } else { "read" };
            let (phase, stop) = (traffic.phase.clone(), traffic.stop.clone());
            let (answers, problems) = (traffic.answers.clone(), traffic.problems.clone());
            let base = base.to_owned();
            workers.push(tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .build()
                    .unwrap();
                let mut i = n;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let product = (i % 24 + 1) as i32;
                    let request = match kind {
                        "order" => client.post(format!("{base}/orders")).json(&json!({
                            "product_id": product, "quantity": 1 + (i % 3), "payment_method": "card"
                        })),
                        _ => client.get(format!("{base}/products/{product}")),
                    };
                    let sent_in = phase.load(Ordering::SeqCst);
                    let status = match request.send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let text = response.text().await.unwrap_or_default();
                            match serde_json::from_str::<Value>(&text) {
                                Ok(body) if status >= 400 && !body["error"].is_string() => problems
                                    .lock()
                                    .unwrap()
                                    .push(format!("{kind} {status} without an error: {body}")),
                                Ok(_) => {}
                                Err(_) => problems
                                    .lock()
                                    .unwrap()
                                    .push(format!("{kind} {status} not JSON: {text}")),
                            }
                            status
                        }
                        Err(err) => {
                            problems.lock().unwrap().push(format!("{kind}: {err}"));
                            0
                        }
                    };
                    *answers
                        .lock()
                        .unwrap()
                        .entry((sent_in, kind, status))
                        .or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }));
        }
        Self { workers, ..traffic }
    }

    fn enter(&self, phase: u8) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    async fn finish(self) -> (Answers, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers {
            worker.await.unwrap();
        }
        let answers = self.answers.lock().unwrap().clone();
        let problems = self.problems.lock().unwrap().clone();
        (answers, problems)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// PostgreSQL stops for 10 s while clients order and browse: database requests answer 503
/// with a JSON error, `/healthz` (degraded) and `/metrics` keep answering, the process stays
/// up, orders succeed again within 5 s of the database's return without a restart, and no
/// order is half-written: every unit of stock is in the shelf, in a completed order, or in an
/// order still pending from the outage (which the reaper releases later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_ten_seconds_under_traffic() {
    const STOCK: i64 = 1_000_000;
    let pg = Arc::new(TestPostgres::start().unwrap());
    let url = pg.create_database();
    shop_db::run_migrations(&url).unwrap();
    let checker = TestApp {
        address: String::new(),
        database_url: url.clone(),
        payment: None,
        client: reqwest::Client::new(),
    };
    checker.execute(&format!("UPDATE products SET stock_level = {STOCK}"));
    let payment = spawn_payment(0.0).await;
    let logs = temp_dir("postgres-outage");
    let mut api = ApiProcess::start(&url, payment, &logs.join("logs")).await;
    let client = reqwest::Client::new();
    let base = api.base.clone();
    let get = |path: &str| {
        let request = client.get(format!("{base}{path}"));
        async move {
            let response = request.send().await.expect("the API answers");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };

    let traffic = Traffic::start(&api.base, 4, 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    traffic.enter(OUTAGE);
    let stopped_at = chrono::Utc::now();
    // Requests sent before the outage get to finish.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = pg.clone();
    blocking(move || server.stop()).await.unwrap();
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(10) {
        let (status, body) = get("/healthz").await;
        let health: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status, 200, "{body}");
        // The first probe may still have found a live pooled connection.
        if outage.elapsed() > Duration::from_secs(3) {
            assert_eq!(health["status"], "degraded", "{body}");
            assert_eq!(health["database"], "unavailable", "{body}");
        }
        let (status, metrics) = get("/metrics").await;
        assert_eq!(status, 200);
        assert!(metrics.contains("http_requests_total"));
        api.assert_running();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let server = pg.clone();
    blocking(move || server.restart()).await.unwrap();
    let restarted_at = chrono::Utc::now();
    traffic.enter(AFTER);
    let back = Instant::now();
    let recovered = loop {
        let response = client
            .post(format!("{base}/orders"))
            .json(&json!({"product_id": 1, "quantity": 1, "payment_method": "paypal"}))
            .send()
            .await
            .unwrap();
        if response.status() == 201 {
            break back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "orders still fail {:?} after the database returned",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (answers, problems) = traffic.finish().await;
    assert!(problems.is_empty(), "{problems:#?}");
    let count = |phase: u8, kind: &str, status: u16| {
        answers
            .get(&(phase, kind, status))
            .copied()
            .unwrap_or_default()
    };
    for ((phase, kind, status), n) in &answers {
        let allowed: &[u16] = match *phase {
            // Requests sent just before the stop may still succeed.
            BEFORE => &[200, 201],
            _ => &[200, 201, 503],
        };
        assert!(
            allowed.contains(status),
            "{n} × {kind} answered {status} in phase {phase}: {answers:?}"
        );
    }
    assert!(count(BEFORE, "order", 201) > 0, "{answers:?}");
    assert!(count(OUTAGE, "order", 503) > 0, "{answers:?}");
    assert!(count(OUTAGE, "read", 503) > 0, "{answers:?}");
    assert!(count(AFTER, "order", 201) > 0, "{answers:?}");
    assert!(count(AFTER, "read", 200) > 0, "{answers:?}");
    let (_, health) = get("/healthz").await;
    assert!(health.contains("\"ok\""), "{health}");

    // No order half-written.
    let created: u64 = [BEFORE, OUTAGE, AFTER]
        .iter()
        .map(|p| count(*p, "order", 201))
        .sum::<u64>()
        + 1;
    assert_eq!(
        checker.count("SELECT count(*) AS n FROM orders WHERE order_status = 'completed'") as u64,
        created,
        "every 201 is a completed order and every completed order was answered 201"
    );
    let unaccounted = checker.count(&format!(
        "SELECT count(*) AS n FROM products p WHERE p.stock_level + coalesce((
             SELECT sum(o.quantity) FROM orders o
             WHERE o.product_id = p.id AND o.order_status IN ('completed', 'pending')), 0) <> {STOCK}"
    ));
    assert_eq!(unaccounted, 0, "stock and orders disagree");
    let window = format!(
        "order_time NOT BETWEEN '{}'::timestamptz - interval '2 seconds' AND '{}'::timestamptz",
        stopped_at.to_rfc3339(),
        restarted_at.to_rfc3339()
    );
    assert_eq!(
        checker.count(&format!(
            "SELECT count(*) AS n FROM orders WHERE order_status = 'pending' AND {window}"
        )),
        0,
        "only orders caught by the outage may be left pending"
    );
    assert!(events(&api.log(), "database_unavailable") > 0);
    eprintln!("orders succeeded again {recovered:?} after PostgreSQL returned; {answers:?}");
    api.stop();
}

/// A payment service that can be stopped and started again on the same address.
struct Payment {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Payment {
    async fn start(addr: SocketAddr) -> Self {
        let app = shop_payment::Application::build(shop_payment::Settings {
            listen: addr,
            decline_rate: 0.0,
            payment_token_file: PAYMENT_TOKEN.path.clone(),
            common: common_args(false),
        })
        .await
        .expect("the payment service starts");
        let addr = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
            Ok("drill")
        }));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn stop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.task.take().unwrap())
            .await
            .expect("the payment service stops")
            .unwrap()
            .unwrap();
    }
}

/// The payment service stops while the API runs: orders fail cleanly (503, the order
/// recorded failed, no stock taken), the API stays up, and orders succeed again once a
/// payment service answers on the same address — without restarting the API.
#[tokio::test]
async fn payment_service_stopped_and_back() {
    let mut payment = Payment::start("127.0.0.1:0".parse().unwrap()).await;
    let app = spawn_app_with(Options {
        payment_url: Some(format!("http://{}", payment.addr)),
        order_limits: NO_LIMITS,
        ..Options::default()
    })
    .await;
    let order = json!({"product_id": 3, "quantity": 2, "payment_method": "card"});
    assert_eq!(app.post_json("/orders", &order).await.0, 201);
    let stock = app.stock(3);

    payment.stop().await;
    for _ in 0..5 {
        let (status, body) = app.post_json("/orders", &order).await;
        assert_eq!(status, 503, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("payment service"),
            "{body}"
        );
    }
    assert_eq!(app.stock(3), stock, "no stock taken");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE order_status = 'failed' AND failure_reason = 'payment_unavailable'"),
        5
    );
    let (status, health) = app.get("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(app.get("/products/3").await.0, 200);

    let _payment = Payment::start(payment.addr).await;
    let back = Instant::now();
    while app.post_json("/orders", &order).await.0 != 201 {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "orders still fail after the payment service returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        assert_eq!(app.post_json("/orders", &order).await.0, 201);
    }
    assert_eq!(app.stock(3), stock - 8);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE order_status = 'completed'"),
        5
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE order_status = 'pending'"),
        0
    );
}

/// The log directory is removed, then the log file rotated away, under the running binary:
/// it keeps serving and logging into a new file, which says once that it was reopened.
#[tokio::test]
async fn log_directory_removed_then_log_rotated_while_running() {
    let payment = spawn_payment(0.0).await;
    let root = temp_dir("logs");
    let logs = root.join("logs");
    let mut api = ApiProcess::start(&migrated_database(), payment, &logs).await;
    let client = reqwest::Client::new();
    let base = api.base.clone();
    let log = || std::fs::read_to_string(logs.join("api.log")).unwrap_or_default();
    let order = || async {
        let response = client
            .post(format!("{base}/orders"))
            .json(&json!({"product_id": 6, "quantity": 1, "payment_method": "card"}))
            .send()
            .await
            .expect("the API answers");
        assert_eq!(response.status(), 201);
    };
    order().await;
    assert_eq!(events(&log(), "order_completed"), 1);

    // Logs keep coming (an order every 50 ms) until the new file has them.
    let until_logged_again = |what: &'static str| async move {
        let started = Instant::now();
        while events(&log(), "order_completed") == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "nothing logged {what}"
            );
            order().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    std::fs::remove_dir_all(&logs).unwrap();
    until_logged_again("after the log directory was removed").await;
    api.assert_running();

    std::fs::rename(logs.join("api.log"), root.join("api.log.1")).unwrap();
    until_logged_again("after the log file was rotated").await;
    // More logging, well past the writer's reopen check, says nothing more about it.
    for _ in 0..12 {
        order().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.assert_running();
    let rotated = std::fs::read_to_string(root.join("api.log.1")).unwrap();
    let current = log();
    assert_eq!(events(&rotated, "log_file_reopened"), 1, "{rotated}");
    assert!(events(&rotated, "order_completed") >= 1, "{rotated}");
    assert_eq!(events(&current, "log_file_reopened"), 1, "{current}");
    assert!(events(&current, "order_completed") >= 12, "{current}");
    let first: Value = serde_json::from_str(current.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["event"], "log_file_reopened",
        "says so first: {current}"
    );
    assert_eq!(first["level"], "warn");
    assert_eq!(first["service"], "api");
    api.stop();
    let _ = std::fs::remove_dir_all(&root);
}
