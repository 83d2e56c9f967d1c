use std::process::ExitCode;

use clap::Parser;
use shop_payment::{Application, Settings, SERVICE};

#[tokio::main]
async fn main() -> ExitCode {
    shop_telemetry::exit_status("shop-payment", run(Settings::parse()).await)
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    // Checked before the logger exists, so a bad setting is one plain line on stderr.
    settings.common.validate().map_err(anyhow::Error::msg)?;
    settings.common.init_logging(SERVICE)?;
    let app = Application::build(settings).await?;
    log::info!(event = "service_started", listen:% = app.local_addr(); "payment service listening on {}", app.local_addr());
    app.run_until_stopped(shop_telemetry::shutdown::signal_received())
        .await
}
