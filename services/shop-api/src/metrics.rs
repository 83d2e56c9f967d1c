use prometheus::{IntCounterVec, Opts, Registry};

/// How an order attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum OrderOutcome {
    Completed,
    /// Payment declined or unavailable; the stock was released.
    Failed,
    /// Refused before any payment: not enough stock.
    Rejected,
    /// Refused before anything else: over a rate limit (429).
    RateLimited,
}

impl OrderOutcome {
    const ALL: [Self; 4] = [
        Self::Completed,
        Self::Failed,
        Self::Rejected,
        Self::RateLimited,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// `orders_total{status}`.
#[derive(Clone)]
pub struct ApiMetrics {
    orders: IntCounterVec,
}

impl ApiMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let orders = IntCounterVec::new(
            Opts::new(
                "orders_total",
                "Order attempts by outcome (completed, failed, rejected, rate_limited).",
            ),
            &["status"],
        )?;
        registry.register(Box::new(orders.clone()))?;
        // Every outcome exists from the start, so rates are 0, not absent, in a quiet shop.
        for outcome in OrderOutcome::ALL {
            orders.with_label_values(&[outcome.label()]);
        }
        Ok(Self { orders })
    }

    pub fn order(&self, outcome: OrderOutcome) {
        self.orders.with_label_values(&[outcome.label()]).inc();
    }
}
