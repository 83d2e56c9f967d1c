use std::{future::Future, net::SocketAddr};

use poem::endpoint::BoxEndpoint;
use prometheus::Registry;
use shop_faults::{FaultAccess, FaultInjection, FaultKind, Faults, FaultsApi};
use shop_telemetry::{
    app::{service_endpoint, HealthApi},
    server::BoundListener,
    BearerToken,
};

use crate::{metrics::PaymentMetrics, payments::PaymentsApi, PaymentMethod, Settings, SERVICE};

const FAULT_KINDS: &[FaultKind] = &[
    FaultKind::ErrorRate,
    FaultKind::Latency,
    FaultKind::DeclineRate,
];

/// The payment service, bound and ready to serve.
pub struct Application {
    listener: BoundListener,
    endpoint: BoxEndpoint<'static>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let faults = Faults::new(
            FAULT_KINDS,
            FaultAccess::from_settings(&settings.common).map_err(anyhow::Error::msg)?,
        )
        .with_methods(&PaymentMethod::NAMES);
        let token = BearerToken::from_file("--payment-token-file", &settings.payment_token_file)
            .map_err(anyhow::Error::msg)?;
        let registry = Registry::new();
        let metrics = PaymentMetrics::register(&registry)?;
        let endpoint = service_endpoint(
            "shop-payment",
            (
                PaymentsApi::new(faults.clone(), metrics, settings.decline_rate, token),
                FaultsApi::new(faults.clone()),
            ),
            HealthApi::new(SERVICE, None),
            &registry,
            FaultInjection::new(faults),
        )?;
        let listener = BoundListener::bind_with(settings.listen, settings.common.connections)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", settings.listen))?;
        Ok(Self { listener, endpoint })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    pub async fn run_until_stopped<S>(self, shutdown: S) -> anyhow::Result<()>
    where
        S: Future<Output = std::io::Result<&'static str>> + Send,
    {
        self.listener
            .run(self.endpoint, shutdown, Vec::new())
            .await?;
        Ok(())
    }
}
