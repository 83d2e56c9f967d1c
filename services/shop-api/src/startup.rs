use std::{future::Future, net::SocketAddr};

use poem::endpoint::BoxEndpoint;
use prometheus::Registry;
use shop_db::{Database, PoolSettings};
use shop_faults::{FaultAccess, FaultInjection, FaultKind, Faults, FaultsApi};
use shop_payment::PaymentClient;
use shop_telemetry::{
    app::{service_endpoint, HealthApi},
    server::BoundListener,
    BearerToken,
};

use crate::{
    api::{LoginApi, OrdersApi, ProductsApi},
    auth::Sessions,
    client_ip::ClientIp,
    login_gate::LoginGate,
    metrics::ApiMetrics,
    rate_limit::OrderRateLimiter,
    Settings, SERVICE,
};

const FAULT_KINDS: &[FaultKind] = &[FaultKind::ErrorRate, FaultKind::Latency];

/// The API service, bound and ready to serve.
pub struct Application {
    listener: BoundListener,
    endpoint: BoxEndpoint<'static>,
    db: Database,
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
        let payment_token =
            BearerToken::from_file("--payment-token-file", &settings.payment_token_file)
                .map_err(anyhow::Error::msg)?;
        let payment = PaymentClient::new(
            &settings.payment_url,
            settings.payment_timeout,
            payment_token,
        )?;
        let sessions = Sessions::new(db.clone(), settings.session_ttl);
        let client_ip = ClientIp::new(settings.trusted_proxies);
        let registry = Registry::new();
        let metrics = ApiMetrics::register(&registry)?;
        let health = HealthApi::new(SERVICE, Some(db.health_probe()));
        let endpoint = service_endpoint(
            "shop-api",
            (
                ProductsApi::new(db.clone()),
                OrdersApi::new(
                    db.clone(),
                    payment,
                    metrics,
                    sessions.clone(),
                    client_ip,
                    OrderRateLimiter::new(settings.order_limits),
                ),
                LoginApi::new(
                    db.clone(),
                    sessions,
                    client_ip,
                    LoginGate::new(settings.login_limits),
                ),
                FaultsApi::new(faults.clone()),
            ),
            health,
            &registry,
            FaultInjection::new(faults),
        )?;
        let listener = BoundListener::bind_with(settings.listen, settings.common.connections)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", settings.listen))?;
        Ok(Self {
            listener,
            endpoint,
            db,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    pub async fn run_until_stopped<S>(self, shutdown: S) -> anyhow::Result<()>
    where
        S: Future<Output = std::io::Result<&'static str>> + Send,
    {
        let reaper = tokio::spawn(crate::api::release_abandoned_orders(self.db.clone()));
        let purger = tokio::spawn(crate::auth::purge_expired_sessions(self.db.clone()));
        self.listener
            .run(self.endpoint, shutdown, vec![reaper, purger])
            .await?;
        Ok(())
    }
}
