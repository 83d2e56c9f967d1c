use std::process::ExitCode;

use clap::Parser;
use shop_frontend::{Application, Settings, SERVICE};

fn main() -> ExitCode {
    let settings = Settings::parse();
    shop_telemetry::runtime::run("shop-frontend", run(settings))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    // Checked before the logger exists, so a bad setting is one plain line on stderr.
    settings.validate()?;
    // Checked before the logger exists, so a bad setting is one plain line on stderr.
    settings.common.validate().map_err(anyhow::Error::msg)?;
    settings.common.init_logging(SERVICE)?;
    let api_url = settings.api_url.clone();
    let app = Application::build(settings).await?;
    log::info!(
        event = "service_started", listen:% = app.local_addr(), api_url = api_url.as_str();
        "frontend service listening on {}, using the API at {api_url}", app.local_addr()
    );
    app.run_until_stopped(shop_telemetry::shutdown::signal_received())
        .await
}
