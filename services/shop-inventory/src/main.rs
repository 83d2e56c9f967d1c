use std::process::ExitCode;

use clap::Parser;
use shop_inventory::{Application, Cli, SERVICE};

fn main() -> ExitCode {
    let cli = Cli::parse();
    shop_telemetry::runtime::run("shop-inventory", run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.into_settings()?;
    // Checked before the logger exists, so a bad setting is one plain line on stderr.
    settings.common.validate().map_err(anyhow::Error::msg)?;
    settings.common.init_logging(SERVICE)?;
    let app = Application::build(settings).await?;
    log::info!(event = "service_started", listen:% = app.local_addr(); "inventory service listening on {}", app.local_addr());
    app.run_until_stopped(shop_telemetry::shutdown::signal_received())
        .await
}
