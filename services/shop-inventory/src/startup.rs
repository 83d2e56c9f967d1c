use std::{future::Future, net::SocketAddr};

use poem::endpoint::BoxEndpoint;
use prometheus::Registry;
use shop_db::{Database, PoolSettings};
use shop_faults::{FaultAccess, FaultInjection, FaultKind, Faults, FaultsApi};
use shop_telemetry::{
    app::{service_endpoint, HealthApi},
    server::BoundListener,
    BearerToken,
};

use crate::{api::StockApi, metrics::InventoryMetrics, monitor::StockMonitor, Settings, SERVICE};

const FAULT_KINDS: &[FaultKind] = &[
    FaultKind::ErrorRate,
    FaultKind::Latency,
    FaultKind::RestockPaused,
];

/// The inventory service, bound and ready to serve.
pub struct Application {
    listener: BoundListener,
    endpoint: BoxEndpoint<'static>,
    monitor: StockMonitor,
    refresh_interval: std::time::Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = Database::open(
            &settings.database_url,
            &PoolSettings {
                max_size: settings.database_pool_size,
                ..PoolSettings::default()
            },
        )
        .await?;
        let faults = Faults::new(
            FAULT_KINDS,
            FaultAccess::from_settings(&settings.common).map_err(anyhow::Error::msg)?,
        );
        // Stock changes are operator actions, like faults: the same token admits both.
        let operator = settings
            .common
            .fault_token_file
            .as_deref()
            .map(|path| BearerToken::from_file("--fault-token-file", path))
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let registry = Registry::new();
        let metrics = InventoryMetrics::register(&registry)?;
        let health = HealthApi::new(SERVICE, Some(db.health_probe()));
        let endpoint = service_endpoint(
            "shop-inventory",
            (
                StockApi::new(db.clone(), operator),
                FaultsApi::new(faults.clone()),
            ),
            health,
            &registry,
            FaultInjection::new(faults.clone()),
        )?;
        let mut monitor = StockMonitor::new(db, metrics, faults);
        // Gauges are current before the first scrape can come.
        monitor.refresh().await;
        let listener = BoundListener::bind_with(settings.listen, settings.common.connections)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", settings.listen))?;
        Ok(Self {
            listener,
            endpoint,
            monitor,
            refresh_interval: settings.refresh_interval,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    pub async fn run_until_stopped<S>(self, shutdown: S) -> anyhow::Result<()>
    where
        S: Future<Output = std::io::Result<&'static str>> + Send,
    {
        let monitor = tokio::spawn(self.monitor.run(self.refresh_interval));
        self.listener
            .run(self.endpoint, shutdown, vec![monitor])
            .await?;
        Ok(())
    }
}
