use std::process::ExitCode;

use clap::Parser;
use shop_api::{Application, Cli, Command, SERVICE};

fn main() -> ExitCode {
    let cli = Cli::parse();
    shop_telemetry::runtime::run("shop-api", async move {
        match cli.command {
            Some(Command::Migrate(args)) => migrate(&args.database_url).await,
            None => serve(cli).await,
        }
    })
}

async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let url = database_url.to_owned();
    let applied = tokio::task::spawn_blocking(move || shop_db::run_migrations(&url)).await??;
    if applied.is_empty() {
        println!("shop-api: database schema is up to date");
    } else {
        println!(
            "shop-api: applied {} migration(s): {}",
            applied.len(),
            applied.join(", ")
        );
    }
    Ok(())
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.into_settings()?;
    // Checked before the logger exists, so a bad setting is one plain line on stderr.
    settings.common.validate().map_err(anyhow::Error::msg)?;
    settings.common.init_logging(SERVICE)?;
    let app = Application::build(settings).await?;
    log::info!(event = "service_started", listen:% = app.local_addr(); "api service listening on {}", app.local_addr());
    app.run_until_stopped(shop_telemetry::shutdown::signal_received())
        .await
}
