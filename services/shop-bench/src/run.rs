//! `shop-bench run`: the benchmarks of issue 8, each measured against its baseline in the same
//! run on the same machine.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use diesel::{connection::SimpleConnection, Connection, PgConnection};
use shop_testkit::TestPostgres;

use crate::{
    load::{self, Load, Measured, PgTarget, Scripts},
    login_flood,
    procs::{peak_rss_kib, unlimited_orders, CpuMeter, CpuSample, ServiceProcess},
    report::{self, Comparison, MemoryRow, Report, Single},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Bench {
    /// API `GET /products/:id` against pgbench running the same SELECT.
    Catalog,
    /// API `POST /orders` (with the payment service) against pgbench running the same
    /// transactions.
    Orders,
    /// `/healthz` through the services' endpoint stack with and without request metrics.
    Middleware,
    /// The inventory's `/metrics` with 1,000 more products in its gauges.
    Metrics,
    /// The frontend's product page (over the API), so it is measured under load too.
    Frontend,
    /// Many clients posting wrong passwords to an API of its own: logins/s, the refused
    /// share, and its peak memory against the goal (issue 14).
    LoginFlood,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Which benchmarks to run (comma-separated); all by default.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub only: Vec<Bench>,

    /// Concurrent connections of wrk and of pgbench (the API's database pool has 10).
    #[arg(long, default_value_t = 10)]
    pub connections: u32,

    /// Threads of wrk and of pgbench.
    #[arg(long, default_value_t = 1)]
    pub threads: u32,

    /// Seconds of each measured run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,

    /// Seconds of load before each measured run, not counted.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,

    /// Directory of the service binaries; by default this binary's own.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,

    /// Directory of the wrk and pgbench scripts (the repository's `bench/`).
    #[arg(long)]
    pub scripts: Option<PathBuf>,

    /// Concurrent clients of the login flood.
    #[arg(long, default_value_t = 64)]
    pub login_flood_clients: u32,

    /// Seconds of the login flood (no warm-up: the peak memory is the whole flood's).
    #[arg(long, default_value_t = 30)]
    pub login_flood_duration: u64,

    /// Arguments added to the flooded API's, e.g. `--login-flood-api-args=--login-hashers=16`
    /// (repeat it for more).
    #[arg(long, allow_hyphen_values = true)]
    pub login_flood_api_args: Vec<String>,

    /// A `shop-api` binary to flood instead of the run's, e.g. an older build for a before
    /// figure.
    #[arg(long)]
    pub login_flood_bin: Option<PathBuf>,

    /// Write the figures into this README, between its `bench:begin` and `bench:end` markers.
    #[arg(long)]
    pub update_readme: Option<PathBuf>,

    /// Keep the work directory (logs, wrk and pgbench output) instead of removing it.
    #[arg(long)]
    pub keep: bool,
}

/// What the catalog and order benchmarks give products, so none runs out during a run.
const HUGE_STOCK: i32 = 1_000_000_000;
/// Products added for the `/metrics` benchmark.
const EXTRA_PRODUCTS: usize = 1_000;
const SEEDED_PRODUCTS: usize = 24;
/// Completed orders the database starts with: about a day of the lab's traffic. A shop has an
/// order history, and the API's prepared statements are planned for the tables as they are: on
/// an empty, freshly analysed `orders` PostgreSQL's generic plan for completing an order by id
/// is a sequential scan, kept until autovacuum next analyses the table (bench/README.md).
const HISTORY_ORDERS: u32 = 100_000;

struct Shop {
    api: ServiceProcess,
    payment: ServiceProcess,
    inventory: ServiceProcess,
    frontend: ServiceProcess,
}

impl Shop {
    fn all(&mut self) -> [&mut ServiceProcess; 4] {
        [
            &mut self.api,
            &mut self.payment,
            &mut self.inventory,
            &mut self.frontend,
        ]
    }
}

struct Harness<'a> {
    wrk: PathBuf,
    pgbench: PathBuf,
    scripts: Scripts,
    load: Load,
    warmup: Duration,
    work: &'a Path,
    pg: PgTarget,
    cpu: CpuMeter,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let wrk = load::find_tool("wrk", "apt-get install wrk")?;
    let pgbench = load::find_tool(
        "pgbench",
        "apt-get install postgresql-contrib (Debian 12: postgresql-client-15 has it)",
    )?;
    let scripts = Scripts::load(&args.scripts.clone().unwrap_or_else(Scripts::default_dir))?;
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no directory")?
            .to_owned(),
    };
    let benches: Vec<Bench> = if args.only.is_empty() {
        Bench::value_variants().to_vec()
    } else {
        args.only.clone()
    };
    let work = std::env::temp_dir().join(format!("shop-bench-{}", std::process::id()));
    fs::create_dir_all(&work)?;
    let result = run_in(&args, &benches, &bin_dir, &work, wrk, pgbench, scripts).await;
    if args.keep || result.is_err() {
        eprintln!("work directory kept: {}", work.display());
    } else {
        let _ = fs::remove_dir_all(&work);
    }
    let report = result?;
    let text = report::render(&report);
    println!("{text}");
    if let Some(readme) = &args.update_readme {
        report::update_readme(readme, &text)?;
        eprintln!("figures written to {}", readme.display());
    }
    if report.processes_exited.is_empty() {
        Ok(())
    } else {
        bail!("processes exited: {}", report.processes_exited.join("; "))
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_in(
    args: &RunArgs,
    benches: &[Bench],
    bin_dir: &Path,
    work: &Path,
    wrk: PathBuf,
    pgbench: PathBuf,
    scripts: Scripts,
) -> anyhow::Result<Report> {
    let load_before = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok());
    progress("starting PostgreSQL (throwaway, shop-testkit)");
    let postgres = TestPostgres::start().map_err(anyhow::Error::msg)?;
    let url = postgres.create_database();
    let database = url.rsplit('/').next().unwrap_or_default().to_owned();
    let migrate_url = url.clone();
    tokio::task::spawn_blocking(move || shop_db::run_migrations(&migrate_url)).await??;
    execute(
        &url,
        &format!("UPDATE products SET stock_level = {HUGE_STOCK}"),
    )?;
    execute(
        &url,
        &format!(
            "INSERT INTO orders (product_id, quantity, total_amount, order_status, \
             payment_method, payment_reference, order_time, updated_at) \
             SELECT p.id, 1, p.price, 'completed', 'card', 'txn_history_' || n, \
             now() - (n * interval '1 day' / {HISTORY_ORDERS}), \
             now() - (n * interval '1 day' / {HISTORY_ORDERS}) \
             FROM generate_series(1, {HISTORY_ORDERS}) AS n \
             JOIN products p ON p.id = 1 + n % {SEEDED_PRODUCTS}"
        ),
    )?;
    execute(&url, "VACUUM ANALYZE")?;

    progress("starting the services (release binaries)");
    let mut shop = start_shop(bin_dir, work, &url).await?;
    let cpu = CpuMeter::new(
        vec![
            ("api", shop.api.pid()),
            ("payment", shop.payment.pid()),
            ("inventory", shop.inventory.pid()),
            ("frontend", shop.frontend.pid()),
        ],
        postgres.port(),
    );
    let ctx = Harness {
        wrk,
        pgbench,
        scripts,
        load: Load {
            connections: args.connections,
            threads: args.threads,
            duration: Duration::from_secs(args.duration),
        },
        warmup: Duration::from_secs(args.warmup),
        work,
        pg: PgTarget {
            port: postgres.port(),
            database,
        },
        cpu,
    };

    let mut report = Report {
        connections: args.connections,
        duration: args.duration,
        load_before,
        ..Report::default()
    };
    for bench in benches {
        match bench {
            Bench::Catalog => report.comparisons.push(catalog(&ctx, &shop).await?),
            Bench::Orders => report.comparisons.push(orders(&ctx, &shop, &url).await?),
            Bench::Middleware => {
                let (comparison, memory) = middleware(&ctx, bin_dir).await?;
                report.comparisons.push(comparison);
                report.memory.extend(memory);
            }
            Bench::Metrics => report.singles.push(metrics(&ctx, &shop, &url).await?),
            Bench::Frontend => report.singles.push(frontend(&ctx, &shop).await?),
            Bench::LoginFlood => {
                progress("login flood: wrong passwords to an API of its own");
                let binary = args
                    .login_flood_bin
                    .clone()
                    .unwrap_or_else(|| bin_dir.join("shop-api"));
                let variant = login_flood::describe_variant(
                    &args.login_flood_api_args,
                    args.login_flood_bin.as_deref(),
                );
                let setup = login_flood::FloodSetup {
                    wrk: &ctx.wrk,
                    scripts: &ctx.scripts,
                    work,
                    binary: &binary,
                    database_url: &url,
                    extra_args: &args.login_flood_api_args,
                    clients: args.login_flood_clients,
                    duration: Duration::from_secs(args.login_flood_duration),
                };
                report.login_flood = Some(login_flood::run(setup, variant).await?);
            }
        }
    }
    let mut memory = Vec::new();
    for service in shop.all() {
        if let Err(err) = service.ensure_running() {
            report.processes_exited.push(format!("{err:#}"));
        }
        memory.push(MemoryRow {
            process: format!("shop-{}", service.name),
            peak_kib: peak_rss_kib(service.pid()),
        });
    }
    memory.append(&mut report.memory);
    report.memory = memory;
    Ok(report)
}

async fn start_shop(bin_dir: &Path, work: &Path, url: &str) -> anyhow::Result<Shop> {
    let client = reqwest::Client::new();
    // Read by the services at startup; the file goes when this returns.
    let payment_token = shop_testkit::secrets::token_file("payment-token");
    let payment_token_args = || {
        vec![
            "--payment-token-file".to_owned(),
            payment_token.path.display().to_string(),
        ]
    };
    let service = |name: &'static str, extra: Vec<String>| {
        ServiceProcess::spawn(
            name,
            &bin_dir.join(format!("shop-{name}")),
            work,
            |listen, logs| {
                let mut args = vec!["--listen".into(), listen, "--log-dir".into(), logs];
                args.extend(extra);
                args
            },
        )
    };
    // Every payment authorized, as in pgbench's script.
    let mut payment = service(
        "payment",
        [
            vec!["--decline-rate".into(), "0".into()],
            payment_token_args(),
        ]
        .concat(),
    )?;
    payment.wait_ready(&client).await?;
    let database = || vec!["--database-url".to_owned(), url.to_owned()];
    let mut api = service(
        "api",
        [
            database(),
            vec!["--payment-url".into(), payment.url.clone()],
            payment_token_args(),
            // wrk orders from one address thousands of times a second: the order benchmark
            // measures the order route, so the rate limits are raised out of its way.
            unlimited_orders(),
        ]
        .concat(),
    )?;
    let mut inventory = service("inventory", database())?;
    api.wait_ready(&client).await?;
    inventory.wait_ready(&client).await?;
    let mut frontend = service("frontend", vec!["--api-url".into(), api.url.clone()])?;
    frontend.wait_ready(&client).await?;
    Ok(Shop {
        api,
        payment,
        inventory,
        frontend,
    })
}

fn execute(url: &str, sql: &str) -> anyhow::Result<()> {
    PgConnection::establish(url)?.batch_execute(sql)?;
    Ok(())
}

fn query_i64(url: &str, sql: &str) -> anyhow::Result<i64> {
    use diesel::{sql_types::BigInt, QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    Ok(diesel::sql_query(sql)
        .get_result::<Row>(&mut PgConnection::establish(url)?)?
        .n)
}

fn progress(message: &str) {
    eprintln!("shop-bench: {message}");
}

/// A measured run with the CPU each process spent on it.
struct Run {
    measured: Measured,
    cpu: BTreeMap<&'static str, f64>,
}

impl Harness<'_> {
    async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    async fn wrk(&self, name: &str, url: &str, script: &str, load: Load) -> anyhow::Result<Run> {
        self.wrk_metered(name, url, script, load, &self.cpu).await
    }

    async fn wrk_metered(
        &self,
        name: &str,
        url: &str,
        script: &str,
        load: Load,
        meter: &CpuMeter,
    ) -> anyhow::Result<Run> {
        if !self.warmup.is_zero() {
            load::wrk(
                &self.wrk,
                url,
                script,
                &self.scripts.wrk_report,
                Load {
                    duration: self.warmup,
                    ..load
                },
                self.work,
                &format!("{name}-warmup"),
            )
            .await?;
        }
        self.settle().await;
        let before = meter.sample();
        let measured = load::wrk(
            &self.wrk,
            url,
            script,
            &self.scripts.wrk_report,
            load,
            self.work,
            name,
        )
        .await?;
        let cpu = before.until(&meter.sample());
        progress(&format!(
            "{name}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
            measured.per_second(),
            measured.p50_ms,
            measured.p99_ms,
            measured.failures
        ));
        Ok(Run { measured, cpu })
    }

    async fn pgbench(&self, name: &str, script: &str) -> anyhow::Result<Run> {
        if !self.warmup.is_zero() {
            load::pgbench(
                &self.pgbench,
                &self.pg,
                script,
                Load {
                    duration: self.warmup,
                    ..self.load
                },
                self.work,
                &format!("{name}-warmup"),
            )
            .await?;
        }
        self.settle().await;
        let before: CpuSample = self.cpu.sample();
        let measured =
            load::pgbench(&self.pgbench, &self.pg, script, self.load, self.work, name).await?;
        let cpu = before.until(&self.cpu.sample());
        progress(&format!(
            "{name}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
            measured.per_second(),
            measured.p50_ms,
            measured.p99_ms,
            measured.failures
        ));
        Ok(Run { measured, cpu })
    }
}

async fn catalog(ctx: &Harness<'_>, shop: &Shop) -> anyhow::Result<Comparison> {
    progress("catalog read: API GET /products/:id vs pgbench SELECT");
    let api = ctx
        .wrk(
            "catalog-api",
            &format!("{}/products/1", shop.api.url),
            &ctx.scripts.wrk_get_product,
            ctx.load,
        )
        .await?;
    let pg = ctx
        .pgbench("catalog-pgbench", &ctx.scripts.pgbench_catalog)
        .await?;
    Ok(Comparison::new(
        report::CATALOG_READ,
        "API `GET /products/:id`",
        "pgbench, the same SELECT",
        api.measured,
        api.cpu,
        pg.measured,
        pg.cpu,
        0.7,
    ))
}

async fn orders(ctx: &Harness<'_>, shop: &Shop, url: &str) -> anyhow::Result<Comparison> {
    progress("order creation: API POST /orders (with payment) vs pgbench transaction");
    let api = ctx
        .wrk(
            "orders-api",
            &format!("{}/orders", shop.api.url),
            &ctx.scripts.wrk_post_order,
            ctx.load,
        )
        .await?;
    let not_completed = query_i64(
        url,
        "SELECT count(*) AS n FROM orders WHERE order_status <> 'completed'",
    )?;
    if not_completed > 0 {
        bail!("{not_completed} orders of the API run did not complete");
    }
    let pg = ctx
        .pgbench("orders-pgbench", &ctx.scripts.pgbench_order)
        .await?;
    Ok(Comparison::new(
        "order creation",
        "API `POST /orders` + payment",
        "pgbench, the same statements",
        api.measured,
        api.cpu,
        pg.measured,
        pg.cpu,
        0.5,
    ))
}

async fn middleware(
    ctx: &Harness<'_>,
    bin_dir: &Path,
) -> anyhow::Result<(Comparison, Vec<MemoryRow>)> {
    progress("middleware cost: /healthz with and without request metrics");
    let me = match bin_dir.join("shop-bench") {
        path if path.is_file() => path,
        _ => std::env::current_exe()?,
    };
    let probe = |name: &'static str, metrics: bool| {
        ServiceProcess::spawn(name, &me, ctx.work, |listen, _| {
            let mut args = vec!["probe-server".into(), "--listen".into(), listen];
            if !metrics {
                args.push("--no-request-metrics".into());
            }
            args
        })
    };
    let client = reqwest::Client::new();
    let mut with = probe("probe-with-metrics", true)?;
    let mut without = probe("probe-without-metrics", false)?;
    with.wait_ready(&client).await?;
    without.wait_ready(&client).await?;
    let mut runs: [(Vec<Measured>, BTreeMap<&'static str, f64>); 2] = Default::default();
    // ABBA, so drift (other load, clock frequency) weighs on both alike.
    for (round, order) in [[true, false], [false, true]].into_iter().enumerate() {
        for metrics in order {
            let probe = if metrics { &with } else { &without };
            let meter = ctx.cpu.including("probe", probe.pid());
            let variant = if metrics { "with" } else { "without" };
            let run = ctx
                .wrk_metered(
                    &format!("middleware-{variant}-{round}"),
                    &format!("{}/healthz", probe.url),
                    &ctx.scripts.wrk_get,
                    ctx.load,
                    &meter,
                )
                .await?;
            let (measured, cpu) = &mut runs[usize::from(!metrics)];
            measured.push(run.measured);
            for (process, seconds) in run.cpu {
                *cpu.entry(process).or_insert(0.0) += seconds;
            }
        }
    }
    with.ensure_running()?;
    without.ensure_running()?;
    let memory = vec![
        MemoryRow {
            process: "middleware probe, with metrics".into(),
            peak_kib: peak_rss_kib(with.pid()),
        },
        MemoryRow {
            process: "middleware probe, without".into(),
            peak_kib: peak_rss_kib(without.pid()),
        },
    ];
    let [(with_runs, with_cpu), (without_runs, without_cpu)] = runs;
    Ok((
        Comparison::new(
            report::MIDDLEWARE_COST,
            "`/healthz`, with request metrics",
            "the same, without them",
            Measured::combine(&with_runs),
            with_cpu,
            Measured::combine(&without_runs),
            without_cpu,
            0.95,
        ),
        memory,
    ))
}

async fn metrics(ctx: &Harness<'_>, shop: &Shop, url: &str) -> anyhow::Result<Single> {
    progress("/metrics of the inventory with 1,000 more products");
    execute(
        url,
        &format!(
            "INSERT INTO products (name, description, price, stock_level, low_stock_threshold) \
             SELECT 'Bench product ' || g, 'added by shop-bench', 9.99, 1000, 10 \
             FROM generate_series(1, {EXTRA_PRODUCTS}) g"
        ),
    )?;
    let client = reqwest::Client::new();
    let metrics_url = format!("{}/metrics", shop.inventory.url);
    let wanted = SEEDED_PRODUCTS + EXTRA_PRODUCTS;
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let body = client.get(&metrics_url).send().await?.text().await?;
        let series = body
            .lines()
            .filter(|l| l.starts_with("inventory_stock_level{"))
            .count();
        if series >= wanted {
            break body;
        }
        if Instant::now() > deadline {
            bail!("the inventory shows {series} stock gauges after 30 s, not {wanted}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let server_before = server_render_seconds(&body);
    let run = ctx
        .wrk(
            "metrics-inventory",
            &metrics_url,
            &ctx.scripts.wrk_get,
            Load {
                connections: 1,
                threads: 1,
                ..ctx.load
            },
        )
        .await?;
    let after = client.get(&metrics_url).send().await?.text().await?;
    let server_after = server_render_seconds(&after);
    let server_ms = match (server_before, server_after) {
        (Some((s0, c0)), Some((s1, c1))) if c1 > c0 => Some((s1 - s0) / (c1 - c0) * 1e3),
        _ => None,
    };
    Ok(Single {
        name: "`/metrics` render".into(),
        what: format!(
            "inventory, {wanted} stock gauges, {} KiB, 1 connection",
            body.len() / 1024
        ),
        measured: run.measured,
        note: server_ms
            .map(|ms| format!("{ms:.2} ms per render inside the service"))
            .unwrap_or_default(),
    })
}

/// Sum and count of the service's own `/metrics` request durations.
fn server_render_seconds(body: &str) -> Option<(f64, f64)> {
    let value = |name: &str| {
        body.lines()
            .find(|l| l.starts_with(name) && l.contains("endpoint=\"/metrics\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    Some((
        value("http_request_duration_seconds_sum{")?,
        value("http_request_duration_seconds_count{")?,
    ))
}

async fn frontend(ctx: &Harness<'_>, shop: &Shop) -> anyhow::Result<Single> {
    progress("frontend product page");
    let run = ctx
        .wrk(
            "frontend-page",
            &format!("{}/products/1", shop.frontend.url),
            &ctx.scripts.wrk_get_product,
            ctx.load,
        )
        .await?;
    Ok(Single {
        name: "frontend page".into(),
        what: "`GET /products/:id` (HTML over the API)".into(),
        measured: run.measured,
        note: String::new(),
    })
}
