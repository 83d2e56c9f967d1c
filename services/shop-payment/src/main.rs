use std::process::ExitCode;

use clap::Parser;
use shop_payment::{Application, Settings, SERVICE};

fn main() -> ExitCode {
    let settings = Settings::parse();
    shop_telemetry::runtime::run("shop-payment", run(settings))
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
