use std::{future::Future, net::SocketAddr, time::Duration};

use poem::{endpoint::BoxEndpoint, EndpointExt};
use prometheus::Registry;
use shop_faults::{FaultAccess, FaultInjection, FaultKind, Faults, FaultsApi};
use shop_telemetry::{
    app::{service_endpoint, HealthApi},
    server::BoundListener,
};

use crate::{
    api_client::ApiClient, cart_api::CartApi, checkout::CheckoutApi, context::Context,
    metrics::FrontendMetrics, pages::PagesApi, security_headers::SecurityHeaders,
    sessions::Sessions, Settings, SERVICE,
};

const FAULT_KINDS: &[FaultKind] = &[FaultKind::ErrorRate, FaultKind::Latency];

/// Below this an API timeout risks failing pages during the lab's latency spike (1.5 s).
const SHORT_API_TIMEOUT: Duration = Duration::from_secs(3);

/// The frontend service, bound and ready to serve.
pub struct Application {
    listener: BoundListener,
    endpoint: BoxEndpoint<'static>,
    sessions: Sessions,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let api_timeout = Duration::from_secs(settings.api_timeout);
        if api_timeout < SHORT_API_TIMEOUT {
            log::warn!(
                event = "api_timeout_short", api_timeout_seconds = settings.api_timeout;
                "--api-timeout {} s is short: added API latency will fail pages", settings.api_timeout
            );
        }
        let faults = Faults::new(
            FAULT_KINDS,
            FaultAccess::from_settings(&settings.common).map_err(anyhow::Error::msg)?,
        );
        let registry = Registry::new();
        let ctx = Context {
            api: ApiClient::new(&settings.api_url, api_timeout)?,
            sessions: Sessions::new(
                Duration::from_secs(settings.session_timeout),
                settings.max_sessions as usize,
            ),
            metrics: FrontendMetrics::register(&registry)?,
        };
        let sessions = ctx.sessions.clone();
        let endpoint = service_endpoint(
            "shop-frontend",
            (
                PagesApi::new(ctx.clone()),
                CartApi::new(ctx.clone()),
                CheckoutApi::new(ctx),
                FaultsApi::new(faults.clone()),
            ),
            HealthApi::new(SERVICE, None),
            &registry,
            FaultInjection::new(faults),
        )?
        .with(SecurityHeaders)
        .boxed();
        let listener = BoundListener::bind_with(settings.listen, settings.common.connections)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", settings.listen))?;
        Ok(Self {
            listener,
            endpoint,
            sessions,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    pub async fn run_until_stopped<S>(self, shutdown: S) -> anyhow::Result<()>
    where
        S: Future<Output = std::io::Result<&'static str>> + Send,
    {
        let pruner = tokio::spawn(self.sessions.clone().prune_periodically());
        self.listener
            .run(self.endpoint, shutdown, vec![pruner])
            .await?;
        Ok(())
    }
}
