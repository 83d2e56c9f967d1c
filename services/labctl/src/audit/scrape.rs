//! `labctl audit scrape`: Prometheus scrapes every shop service — `up` is 1 for each of the
//! four, by their `service` label (as the scrape configuration labels them). Polls until it
//! holds or `--wait` runs out.

use std::{collections::BTreeMap, process::ExitCode, time::Duration};

use chrono::Utc;

use super::{args::ScrapeArgs, poll, verdict};
use crate::{
    check::{datasource::InstantApi, expr::QueryResult},
    cli::Targets,
    durations, http,
    scenario::faults::Service,
};

/// The query: the shop's scrape jobs are named `shop-<service>`.
pub const QUERY: &str = "up{job=~\"shop-.+\"}";
pub const SERVICES: [Service; 4] = [
    Service::Api,
    Service::Frontend,
    Service::Payment,
    Service::Inventory,
];

/// Findings for the `up` values by service.
pub fn judge(up: &BTreeMap<String, f64>) -> Vec<String> {
    SERVICES
        .iter()
        .filter_map(|s| match up.get(s.name()) {
            Some(v) if *v == 1.0 => None,
            Some(v) => Some(format!("{}: up is {v}", s.name())),
            None => Some(format!("{}: not scraped (no `up` series)", s.name())),
        })
        .collect()
}

pub async fn command(targets: &Targets, args: &ScrapeArgs) -> anyhow::Result<ExitCode> {
    let wait = durations::parse("--wait", &args.wait)?;
    http::check_url("--prometheus-url", &targets.prometheus_url)?;
    let prometheus = InstantApi::prometheus(
        http::client(Duration::from_secs(targets.timeout.max(1))),
        &targets.prometheus_url,
    );
    let last = std::sync::Mutex::new(BTreeMap::<String, f64>::new());
    let findings = poll(wait, Duration::from_secs(2), || async {
        match prometheus.query(QUERY, Utc::now()).await {
            QueryResult::Data(series) => {
                let up: BTreeMap<String, f64> = series
                    .into_iter()
                    .filter_map(|s| Some((s.labels.get("service")?.clone(), s.value?)))
                    .collect();
                let findings = judge(&up);
                *last.lock().unwrap_or_else(|e| e.into_inner()) = up;
                findings
            }
            QueryResult::Error(e) => vec![format!("Prometheus: {e}")],
        }
    })
    .await;
    for (service, value) in last.into_inner().unwrap_or_else(|e| e.into_inner()) {
        println!("{service}: up {value}");
    }
    verdict("scrape", &findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_must_be_up() {
        let all = BTreeMap::from([
            ("api".to_owned(), 1.0),
            ("frontend".to_owned(), 1.0),
            ("payment".to_owned(), 1.0),
            ("inventory".to_owned(), 1.0),
        ]);
        assert!(judge(&all).is_empty());
        let mut down = all.clone();
        down.insert("payment".into(), 0.0);
        down.remove("inventory");
        assert_eq!(
            judge(&down),
            [
                "payment: up is 0",
                "inventory: not scraped (no `up` series)"
            ]
        );
    }
}
