//! `shop-bench serve`: the four services on a throwaway PostgreSQL, for tools that need the
//! shop running (the fuzzing of `bench/fuzz`). Fails if a service exited meanwhile.

use std::{io::Write, path::PathBuf};

use clap::Args;
use shop_testkit::TestPostgres;

use crate::procs::{unlimited_orders, ServiceProcess};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory of the service binaries; by default this binary's own.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,

    /// Directory for the services' logs; a new temporary one by default.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,

    /// Start the services with `--enable-faults` (the fault API answers loopback clients).
    #[arg(long)]
    pub enable_faults: bool,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .map(ToOwned::to_owned)
            .unwrap_or_default(),
    };
    let work = args.log_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("shop-bench-serve-{}", std::process::id()))
    });
    std::fs::create_dir_all(&work)?;
    let postgres = TestPostgres::start().map_err(anyhow::Error::msg)?;
    let url = postgres.create_database();
    let migrate_url = url.clone();
    tokio::task::spawn_blocking(move || shop_db::run_migrations(&migrate_url)).await??;

    let client = reqwest::Client::new();
    let args_enable_faults = args.enable_faults;
    // The lab's two secrets, in files of their own for as long as the shop runs: the payment
    // token (API → payment) and the operator token (faults, stock changes).
    let payment_token = shop_testkit::secrets::token_file("payment-token");
    let operator_token = shop_testkit::secrets::token_file("operator-token");
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
            &work,
            |listen, logs| {
                let mut args = vec!["--listen".into(), listen, "--log-dir".into(), logs];
                if args_enable_faults {
                    args.push("--enable-faults".into());
                }
                args.push("--fault-token-file".into());
                args.push(operator_token.path.display().to_string());
                args.extend(extra);
                args
            },
        )
    };
    let database = || vec!["--database-url".to_owned(), url.clone()];
    let mut payment = service("payment", payment_token_args())?;
    payment.wait_ready(&client).await?;
    let mut api = service(
        "api",
        [
            database(),
            vec!["--payment-url".into(), payment.url.clone()],
            payment_token_args(),
            // The fuzzer places far more orders than any client may: it tests the order
            // route, not its rate limit (which has its own tests).
            unlimited_orders(),
        ]
        .concat(),
    )?;
    api.wait_ready(&client).await?;
    let mut inventory = service("inventory", database())?;
    inventory.wait_ready(&client).await?;
    let mut frontend = service("frontend", vec!["--api-url".into(), api.url.clone()])?;
    frontend.wait_ready(&client).await?;

    let addresses = serde_json::json!({
        "api": api.url,
        "payment": payment.url,
        "inventory": inventory.url,
        "frontend": frontend.url,
        "database": url,
        "logs": work.join("logs"),
        "payment_token_file": payment_token.path,
        "operator_token_file": operator_token.path,
    });
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{addresses}")?;
    stdout.flush()?;

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    let mut exited = Vec::new();
    for service in [&mut api, &mut payment, &mut inventory, &mut frontend] {
        if let Err(err) = service.ensure_running() {
            exited.push(format!("{err:#}"));
        }
    }
    if exited.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("services exited while serving: {}", exited.join("; "))
    }
}
