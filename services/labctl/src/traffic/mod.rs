//! `labctl traffic`: healthy load, tuned so that it never sets off an alert.
//!
//! About `--rate` (default 5) user journeys per second, started on a fixed schedule whatever
//! the answers take (open loop, at most 256 under way), chosen by weight:
//!
//! | journey | weight | requests |
//! |---|---|---|
//! | browse | 35 % | frontend `GET /` |
//! | products | 30 % | frontend `GET /`, then 1–3 × `GET /products/:id` |
//! | checkout | 10 % | frontend `GET /products/:id`, `POST /cart/items`, `GET /cart`, `POST /checkout` (one per 2 s at rate 5) |
//! | login | 25 % | API `POST /login` with `X-Forwarded-For` from 198.51.100.0/24 |
//!
//! Checkouts pay by card 50 %, paypal 25 %, bank_transfer 15 %, gift_card 10 %, as one of the
//! seeded customers (80 %: logged in at the API, its session sent with the checkout as
//! `Authorization: Bearer`, one session per customer kept until shortly before it expires)
//! or anonymously, 1–3 units of a product whose stock stays at or
//! above its low-stock threshold after the purchase (stock levels from the API's
//! `GET /products`, refreshed every 5 s, minus what this process bought since) — so traffic
//! brings a product down to its threshold at most, where the inventory's restocking takes
//! over, and never below it. Logins use the right password except ~6 %, and a client IP gets
//! at most 2 failures a minute. A step answered 5xx (or not at all) is retried up to three
//! times, as a user reloads; anything else ends the journey. (During the error burst, 50 % of
//! frontend requests fail; with the retries a 4-step checkout still completes ~77 % of the
//! time, so the payment outage running alongside still fails ~0.19 card orders/s.)
//!
//! The control endpoint (`--control-listen`, default 127.0.0.1:9097) serves `GET /status`,
//! `POST /pause {"seconds": N}` (no requests at all for N seconds, then resumes by itself)
//! and `POST /resume`; the traffic-stop scenario uses it.

mod control;

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use rand::{seq::IndexedRandom, Rng};
use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;

use crate::{
    cli::{Targets, TrafficArgs},
    durations, http,
    scenario::{CUSTOMERS, PASSWORD},
};

/// Most journeys under way at once; beyond it a journey is dropped (and counted).
pub const MAX_IN_FLIGHT: u64 = 256;
/// Failed logins allowed per client IP and minute.
pub const FAILURES_PER_IP_PER_MINUTE: usize = 2;
/// Share of logins with a wrong password (when the IP's budget allows).
pub const WRONG_PASSWORD_SHARE: f64 = 0.06;
/// Attempts per journey step while the answer is 5xx or none.
pub const ATTEMPTS: u32 = 4;
/// Payment methods and their weights.
pub const PAYMENT_METHODS: [(&str, u32); 4] = [
    ("card", 50),
    ("paypal", 25),
    ("bank_transfer", 15),
    ("gift_card", 10),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Journey {
    Browse,
    Products,
    Checkout,
    Login,
}

impl Journey {
    pub const WEIGHTS: [(Journey, u32); 4] = [
        (Journey::Browse, 35),
        (Journey::Products, 30),
        (Journey::Checkout, 10),
        (Journey::Login, 25),
    ];

    fn index(self) -> usize {
        match self {
            Self::Browse => 0,
            Self::Products => 1,
            Self::Checkout => 2,
            Self::Login => 3,
        }
    }
}

fn weighted<T: Copy>(rng: &mut impl Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (item, w) in items {
        if pick < *w {
            return *item;
        }
        pick -= w;
    }
    items[items.len() - 1].0
}

#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: i32,
    pub stock_level: i64,
    pub low_stock_threshold: i64,
}

/// Picks 1–3 units of a product that stays at or above its threshold after the purchase.
pub fn pick_purchase(rng: &mut impl Rng, catalog: &[Product]) -> Option<(i32, i64)> {
    let quantity = rng.random_range(1..=3);
    let eligible: Vec<&Product> = catalog
        .iter()
        .filter(|p| p.stock_level - quantity >= p.low_stock_threshold)
        .collect();
    eligible.choose(rng).map(|p| (p.id, quantity))
}

#[derive(Default)]
struct Counter(AtomicU64);

impl Counter {
    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct JourneyStats {
    started: Counter,
    succeeded: Counter,
    failed: Counter,
}

#[derive(Default)]
struct Stats {
    journeys: [JourneyStats; 4],
    dropped: Counter,
    http_2xx: Counter,
    http_4xx: Counter,
    http_5xx: Counter,
    http_other: Counter,
    transport_errors: Counter,
    retries: Counter,
    orders_completed: Counter,
    orders_declined: Counter,
    orders_out_of_stock: Counter,
    orders_other: Counter,
    logins_ok: Counter,
    logins_failed: Counter,
    /// Customer logins for checkouts (sessions opened).
    sessions_opened: Counter,
}

/// A customer's session at the API, for their checkouts.
#[derive(Debug, Clone)]
struct CustomerSession {
    /// The `Authorization` header value.
    authorization: String,
    /// When to log in again: a minute before the API ends the session.
    renew_at: DateTime<Utc>,
}

/// Everything the journeys, the scheduler and the control endpoint share.
pub struct Shared {
    rate: f64,
    started_at: DateTime<Utc>,
    paused_until: Mutex<Option<Instant>>,
    catalog: Mutex<Vec<Product>>,
    ip_failures: Mutex<HashMap<u8, VecDeque<Instant>>>,
    sessions: Mutex<HashMap<&'static str, CustomerSession>>,
    in_flight: AtomicU64,
    stats: Stats,
}

impl Shared {
    fn new(rate: f64) -> Self {
        Self {
            rate,
            started_at: Utc::now(),
            paused_until: Mutex::new(None),
            catalog: Mutex::new(Vec::new()),
            ip_failures: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            in_flight: AtomicU64::new(0),
            stats: Stats::default(),
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds left of a pause, if paused.
    pub fn paused_for(&self) -> Option<Duration> {
        let mut guard = Self::lock(&self.paused_until);
        match *guard {
            Some(until) if until > Instant::now() => Some(until - Instant::now()),
            Some(_) => {
                *guard = None;
                eprintln!("traffic: pause ended; running");
                None
            }
            None => None,
        }
    }

    pub fn pause(&self, seconds: u64) {
        *Self::lock(&self.paused_until) = Some(Instant::now() + Duration::from_secs(seconds));
        eprintln!("traffic: paused for {seconds}s");
    }

    pub fn resume(&self) -> bool {
        let was = Self::lock(&self.paused_until).take().is_some();
        if was {
            eprintln!("traffic: resumed");
        }
        was
    }

    /// A client IP for a login, and whether it may fail (within its budget).
    fn login_ip(&self, rng: &mut impl Rng) -> (u8, bool) {
        let octet: u8 = rng.random_range(1..=254);
        let wants_failure = rng.random_bool(WRONG_PASSWORD_SHARE);
        if !wants_failure {
            return (octet, false);
        }
        let now = Instant::now();
        let mut map = Self::lock(&self.ip_failures);
        let recent = map.entry(octet).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            recent.pop_front();
        }
        if recent.len() < FAILURES_PER_IP_PER_MINUTE {
            recent.push_back(now);
            (octet, true)
        } else {
            (octet, false)
        }
    }

    fn reserve(&self, rng: &mut impl Rng) -> Option<(i32, i64)> {
        let mut catalog = Self::lock(&self.catalog);
        let (id, quantity) = pick_purchase(rng, &catalog)?;
        if let Some(p) = catalog.iter_mut().find(|p| p.id == id) {
            p.stock_level -= quantity;
        }
        Some((id, quantity))
    }

    fn product_ids(&self) -> Vec<i32> {
        Self::lock(&self.catalog).iter().map(|p| p.id).collect()
    }

    /// The status document of `GET /status`.
    pub fn status(&self) -> serde_json::Value {
        let s = &self.stats;
        let journey = |j: Journey| {
            let js = &s.journeys[j.index()];
            json!({"started": js.started.get(), "succeeded": js.succeeded.get(), "failed": js.failed.get()})
        };
        let paused = self.paused_for();
        json!({
            "state": if paused.is_some() { "paused" } else { "running" },
            "paused_for_seconds": paused.map(|d| d.as_secs_f64().ceil() as u64),
            "rate": self.rate,
            "started_at": self.started_at,
            "in_flight": self.in_flight.load(Ordering::Relaxed),
            "dropped": s.dropped.get(),
            "journeys": {
                "browse": journey(Journey::Browse),
                "products": journey(Journey::Products),
                "checkout": journey(Journey::Checkout),
                "login": journey(Journey::Login),
            },
            "orders": {
                "completed": s.orders_completed.get(),
                "declined": s.orders_declined.get(),
                "out_of_stock": s.orders_out_of_stock.get(),
                "other": s.orders_other.get(),
            },
            "logins": {"ok": s.logins_ok.get(), "failed": s.logins_failed.get()},
            "sessions_opened": s.sessions_opened.get(),
            "http": {
                "2xx": s.http_2xx.get(), "4xx": s.http_4xx.get(), "5xx": s.http_5xx.get(),
                "other": s.http_other.get(), "transport_errors": s.transport_errors.get(),
                "retries": s.retries.get(),
            },
            "products_known": Self::lock(&self.catalog).len(),
        })
    }
}

struct Ctx {
    client: reqwest::Client,
    api: String,
    frontend: String,
    shared: Arc<Shared>,
}

/// The session cookie of the frontend.
const SESSION_COOKIE: &str = "shop_session";

fn session_from(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?.trim();
            let value = pair.strip_prefix(SESSION_COOKIE)?.strip_prefix('=')?;
            Some(value.to_owned())
        })
}

impl Ctx {
    /// One step of a journey: up to four attempts while the answer is 5xx or none (a user
    /// reloads a failed page up to three times).
    async fn step(
        &self,
        session: &mut Option<String>,
        make: impl Fn() -> RequestBuilder,
    ) -> Option<u16> {
        let s = &self.shared.stats;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                s.retries.add();
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            let mut request = make();
            if let Some(cookie) = session.as_deref() {
                request = request.header(
                    reqwest::header::COOKIE,
                    format!("{SESSION_COOKIE}={cookie}"),
                );
            }
            match request.send().await {
                Ok(response) => {
                    if let Some(new) = session_from(&response) {
                        *session = Some(new);
                    }
                    let status = response.status().as_u16();
                    // Read the body so the connection can be reused.
                    let _ = response.bytes().await;
                    match status {
                        200..=299 => s.http_2xx.add(),
                        400..=499 => s.http_4xx.add(),
                        500..=599 => s.http_5xx.add(),
                        _ => s.http_other.add(),
                    }
                    if status < 500 {
                        return Some(status);
                    }
                }
                Err(_) => s.transport_errors.add(),
            }
        }
        None
    }

    /// The customer's session for a checkout: the one kept, or a new login at the API.
    async fn session_for(&self, email: &'static str) -> Option<String> {
        let kept = Shared::lock(&self.shared.sessions).get(email).cloned();
        if let Some(session) = kept.filter(|s| s.renew_at > Utc::now()) {
            return Some(session.authorization);
        }
        let octet: u8 = rand::rng().random_range(1..=254);
        let response = self
            .client
            .post(format!("{}/login", self.api))
            .header("x-forwarded-for", format!("198.51.100.{octet}"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body: serde_json::Value = response.json().await.ok()?;
        let token = body.get("session_token")?.as_str()?;
        let expires_at = body
            .get("expires_at")
            .and_then(|v| v.as_str())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        let session = CustomerSession {
            authorization: format!("Bearer {token}"),
            renew_at: expires_at - chrono::Duration::minutes(1),
        };
        self.shared.stats.sessions_opened.add();
        Shared::lock(&self.shared.sessions).insert(email, session.clone());
        Some(session.authorization)
    }

    fn forget_session(&self, email: &str) {
        Shared::lock(&self.shared.sessions).remove(email);
    }

    async fn think(&self) {
        let ms = rand::rng().random_range(20..200);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    async fn run(&self, journey: Journey) -> bool {
        let f = &self.frontend;
        let c = &self.client;
        let mut session = None;
        let ok = |s: Option<u16>| s.is_some_and(|s| (200..300).contains(&s));
        match journey {
            Journey::Browse => ok(self.step(&mut session, || c.get(format!("{f}/"))).await),
            Journey::Products => {
                if !ok(self.step(&mut session, || c.get(format!("{f}/"))).await) {
                    return false;
                }
                let ids = self.shared.product_ids();
                let views = rand::rng().random_range(1..=3);
                for _ in 0..views {
                    let Some(id) = ids.choose(&mut rand::rng()).copied() else {
                        break;
                    };
                    self.think().await;
                    let status = self
                        .step(&mut session, || c.get(format!("{f}/products/{id}")))
                        .await;
                    if !ok(status) {
                        return false;
                    }
                }
                true
            }
            Journey::Checkout => {
                let Some((product_id, quantity)) = self.shared.reserve(&mut rand::rng()) else {
                    // Nothing can be bought without going below a threshold: look around.
                    return ok(self.step(&mut session, || c.get(format!("{f}/"))).await);
                };
                let (method, email) = {
                    let mut rng = rand::rng();
                    let method = weighted(&mut rng, &PAYMENT_METHODS);
                    let email = rng
                        .random_bool(0.8)
                        .then(|| *CUSTOMERS.choose(&mut rng).unwrap_or(&CUSTOMERS[0]));
                    (method, email)
                };
                if !ok(self
                    .step(&mut session, || c.get(format!("{f}/products/{product_id}")))
                    .await)
                {
                    return false;
                }
                self.think().await;
                let add = json!({"product_id": product_id, "quantity": quantity});
                if !ok(self
                    .step(&mut session, || {
                        c.post(format!("{f}/cart/items")).json(&add)
                    })
                    .await)
                {
                    return false;
                }
                self.think().await;
                if !ok(self.step(&mut session, || c.get(format!("{f}/cart"))).await) {
                    return false;
                }
                self.think().await;
                let authorization = match email {
                    Some(email) => match self.session_for(email).await {
                        Some(authorization) => Some(authorization),
                        None => {
                            self.shared.stats.orders_other.add();
                            return false;
                        }
                    },
                    None => None,
                };
                let body = json!({"payment_method": method});
                let s = &self.shared.stats;
                match self
                    .step(&mut session, || {
                        let request = c.post(format!("{f}/checkout")).json(&body);
                        match &authorization {
                            Some(value) => request.header("authorization", value.as_str()),
                            None => request,
                        }
                    })
                    .await
                {
                    Some(200..=299) => {
                        s.orders_completed.add();
                        true
                    }
                    Some(402) => {
                        s.orders_declined.add();
                        true
                    }
                    Some(409) => {
                        s.orders_out_of_stock.add();
                        false
                    }
                    Some(401) => {
                        // The session ended early (the API restarted with a purge, say).
                        if let Some(email) = email {
                            self.forget_session(email);
                        }
                        s.orders_other.add();
                        false
                    }
                    _ => {
                        s.orders_other.add();
                        false
                    }
                }
            }
            Journey::Login => {
                let (octet, fail) = self.shared.login_ip(&mut rand::rng());
                let email = *CUSTOMERS.choose(&mut rand::rng()).unwrap_or(&CUSTOMERS[0]);
                let password = if fail { "wrong-password" } else { PASSWORD };
                let body = json!({"email": email, "password": password});
                let ip = format!("198.51.100.{octet}");
                let a = &self.api;
                let status = self
                    .step(&mut None, || {
                        c.post(format!("{a}/login"))
                            .header("x-forwarded-for", ip.as_str())
                            .json(&body)
                    })
                    .await;
                let s = &self.shared.stats;
                match status {
                    Some(200) => {
                        s.logins_ok.add();
                        !fail
                    }
                    Some(401) => {
                        s.logins_failed.add();
                        fail
                    }
                    _ => false,
                }
            }
        }
    }
}

async fn refresh_catalog(ctx: Arc<Ctx>) {
    let mut failing = false;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if ctx.shared.paused_for().is_some() {
            continue;
        }
        let result: anyhow::Result<Vec<Product>> = http::get_json(
            &ctx.client,
            "the API",
            &ctx.api,
            "/products?limit=100",
            None,
        )
        .await;
        match result {
            Ok(products) => {
                if failing {
                    eprintln!("traffic: the product list is readable again");
                    failing = false;
                }
                *Shared::lock(&ctx.shared.catalog) = products;
            }
            Err(err) => {
                if !failing {
                    eprintln!(
                        "traffic: cannot read the product list (checkouts wait for it): {}",
                        http::one_line(&err)
                    );
                    failing = true;
                }
            }
        }
    }
}

struct Snapshot {
    journeys: u64,
    ok: u64,
    failed: u64,
    dropped: u64,
    completed: u64,
    declined: u64,
    out_of_stock: u64,
    logins: u64,
    logins_failed: u64,
    h2: u64,
    h4: u64,
    h5: u64,
    errors: u64,
}

impl Snapshot {
    fn take(s: &Stats) -> Self {
        let sum = |f: fn(&JourneyStats) -> &Counter| s.journeys.iter().map(|j| f(j).get()).sum();
        Self {
            journeys: sum(|j| &j.started),
            ok: sum(|j| &j.succeeded),
            failed: sum(|j| &j.failed),
            dropped: s.dropped.get(),
            completed: s.orders_completed.get(),
            declined: s.orders_declined.get(),
            out_of_stock: s.orders_out_of_stock.get(),
            logins: s.logins_ok.get() + s.logins_failed.get(),
            logins_failed: s.logins_failed.get(),
            h2: s.http_2xx.get(),
            h4: s.http_4xx.get(),
            h5: s.http_5xx.get(),
            errors: s.transport_errors.get(),
        }
    }

    fn line(&self, before: &Snapshot, span: &str) -> String {
        format!(
            "traffic: {span}: {} journeys ({} ok, {} failed, {} dropped); orders {} completed, {} declined, {} out of stock; logins {} ({} failed); HTTP 2xx {}, 4xx {}, 5xx {}, no answer {}",
            self.journeys - before.journeys,
            self.ok - before.ok,
            self.failed - before.failed,
            self.dropped - before.dropped,
            self.completed - before.completed,
            self.declined - before.declined,
            self.out_of_stock - before.out_of_stock,
            self.logins - before.logins,
            self.logins_failed - before.logins_failed,
            self.h2 - before.h2,
            self.h4 - before.h4,
            self.h5 - before.h5,
            self.errors - before.errors,
        )
    }
}

/// `none` or an address.
fn control_address(text: &str) -> anyhow::Result<Option<SocketAddr>> {
    if text.trim() == "none" {
        return Ok(None);
    }
    text.trim().parse().map(Some).map_err(|_| {
        anyhow!("--control-listen must be an address like 127.0.0.1:9097 or `none`, got `{text}`")
    })
}

pub async fn command(targets: &Targets, args: &TrafficArgs) -> anyhow::Result<ExitCode> {
    http::check_url("--api-url", &targets.api_url)?;
    http::check_url("--frontend-url", &targets.frontend_url)?;
    if !(args.rate > 0.0 && args.rate <= 1000.0) {
        return Err(anyhow!(
            "--rate must be above 0 and at most 1000, got {}",
            args.rate
        ));
    }
    let duration = args
        .duration
        .as_deref()
        .map(|d| durations::parse_positive("--for", d))
        .transpose()?;
    let control = control_address(&args.control_listen)?;
    let shared = Arc::new(Shared::new(args.rate));
    let client = http::client(Duration::from_secs(30));
    let ctx = Arc::new(Ctx {
        client,
        api: http::base(&targets.api_url),
        frontend: http::base(&targets.frontend_url),
        shared: shared.clone(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let control_task = match control {
        Some(addr) => Some(
            control::serve(
                addr,
                &args.control_allowed_hosts,
                shared.clone(),
                stop_rx.clone(),
            )
            .await
            .with_context(|| format!("--control-listen {addr}"))?,
        ),
        None => None,
    };
    eprintln!(
        "traffic: {} journeys/s against {} (frontend) and {} (API){}",
        args.rate,
        ctx.frontend,
        ctx.api,
        control
            .map(|a| format!("; control on http://{a}"))
            .unwrap_or_default()
    );
    let refresher = tokio::spawn(refresh_catalog(ctx.clone()));
    let deadline = duration.map(|d| Instant::now() + d);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let report_every = Duration::from_secs(args.report_every);
    let mut last_report = (Instant::now(), Snapshot::take(&shared.stats));
    let signal = crate::signals::received();
    tokio::pin!(signal);
    let reason = loop {
        tokio::select! {
            _ = tick.tick() => {}
            s = &mut signal => break s.unwrap_or("signal handler failure").to_owned(),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break "its duration ran out".to_owned();
        }
        if !report_every.is_zero() && last_report.0.elapsed() >= report_every {
            let now = Snapshot::take(&shared.stats);
            eprintln!(
                "{}",
                now.line(
                    &last_report.1,
                    &format!("last {}", durations::human(report_every))
                )
            );
            last_report = (Instant::now(), now);
        }
        if shared.paused_for().is_some() {
            continue;
        }
        if shared.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            shared.stats.dropped.add();
            continue;
        }
        let journey = weighted(&mut rand::rng(), &Journey::WEIGHTS);
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let js = &ctx.shared.stats.journeys[journey.index()];
            js.started.add();
            if ctx.run(journey).await {
                js.succeeded.add();
            } else {
                js.failed.add();
            }
            ctx.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    };
    eprintln!("traffic: stopping ({reason}); letting the journeys under way finish");
    let drain_until = Instant::now() + Duration::from_secs(10);
    while shared.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    refresher.abort();
    let _ = stop_tx.send(true);
    if let Some(task) = control_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    let zero = Snapshot {
        journeys: 0,
        ok: 0,
        failed: 0,
        dropped: 0,
        completed: 0,
        declined: 0,
        out_of_stock: 0,
        logins: 0,
        logins_failed: 0,
        h2: 0,
        h4: 0,
        h5: 0,
        errors: 0,
    };
    eprintln!("{}", Snapshot::take(&shared.stats).line(&zero, "in total"));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purchases_never_take_a_product_below_its_threshold() {
        let catalog = vec![
            Product {
                id: 1,
                stock_level: 21,
                low_stock_threshold: 20,
            },
            Product {
                id: 2,
                stock_level: 10,
                low_stock_threshold: 10,
            },
            Product {
                id: 3,
                stock_level: 0,
                low_stock_threshold: 12,
            },
        ];
        let mut rng = rand::rng();
        for _ in 0..200 {
            if let Some((id, q)) = pick_purchase(&mut rng, &catalog) {
                assert_eq!((id, q), (1, 1));
            }
        }
    }

    #[test]
    fn a_client_ip_fails_at_most_twice_a_minute() {
        let shared = Shared::new(5.0);
        let mut rng = rand::rng();
        let mut failures: HashMap<u8, usize> = HashMap::new();
        for _ in 0..20_000 {
            let (ip, fail) = shared.login_ip(&mut rng);
            if fail {
                *failures.entry(ip).or_default() += 1;
            }
        }
        assert!(failures.values().all(|n| *n <= FAILURES_PER_IP_PER_MINUTE));
        assert!(failures.len() > 100, "failures are spread over many IPs");
    }

    #[test]
    fn weights_are_respected() {
        let mut rng = rand::rng();
        let mut counts = HashMap::new();
        for _ in 0..20_000 {
            *counts
                .entry(weighted(&mut rng, &PAYMENT_METHODS))
                .or_insert(0u32) += 1;
        }
        let card = counts["card"] as f64 / 20_000.0;
        assert!((0.46..0.54).contains(&card), "{card}");
        assert!(counts["gift_card"] > 1500);
    }

    #[test]
    fn the_session_cookie_is_read_from_set_cookie() {
        let response: reqwest::Response =
            http_response(&["other=1; Path=/", "shop_session=abc123; Path=/; HttpOnly"]);
        assert_eq!(session_from(&response).as_deref(), Some("abc123"));
    }

    fn http_response(cookies: &[&str]) -> reqwest::Response {
        let mut builder = ::http::Response::builder().status(200);
        for c in cookies {
            builder = builder.header("set-cookie", *c);
        }
        builder.body(Vec::<u8>::new()).unwrap().into()
    }

    #[test]
    fn pauses_end_by_themselves() {
        let shared = Shared::new(5.0);
        assert!(shared.paused_for().is_none());
        shared.pause(60);
        assert!(shared.paused_for().unwrap() > Duration::from_secs(58));
        assert!(shared.resume());
        assert!(shared.paused_for().is_none());
        assert!(!shared.resume());
    }
}
