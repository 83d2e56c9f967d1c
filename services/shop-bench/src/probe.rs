//! The middleware benchmark's server: the endpoint stack every service has (body limit,
//! request metrics, JSON errors, request validation, fault injection) around `/healthz`
//! without a database, with or without the request-metrics middleware.

use std::net::SocketAddr;

use clap::Args;
use prometheus::Registry;
use shop_faults::{FaultAccess, FaultInjection, FaultKind, Faults, FaultsApi};
use shop_telemetry::{
    app::{service_endpoint_with, EndpointOptions, HealthApi},
    server::BoundListener,
};

#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    #[arg(long)]
    pub listen: SocketAddr,

    /// Leave out the request-metrics middleware.
    #[arg(long)]
    pub no_request_metrics: bool,
}

const FAULT_KINDS: &[FaultKind] = &[FaultKind::ErrorRate, FaultKind::Latency];

pub async fn serve(args: ProbeArgs) -> anyhow::Result<()> {
    // Off, as in a deployment without the lab profile: the middleware runs, the API refuses.
    let faults = Faults::new(FAULT_KINDS, FaultAccess::default());
    let registry = Registry::new();
    let endpoint = service_endpoint_with(
        "shop-bench-probe",
        FaultsApi::new(faults.clone()),
        HealthApi::new("probe", None),
        &registry,
        FaultInjection::new(faults),
        EndpointOptions {
            request_metrics: !args.no_request_metrics,
        },
    )?;
    let listener = BoundListener::bind(args.listen).await?;
    listener
        .serve(endpoint, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
