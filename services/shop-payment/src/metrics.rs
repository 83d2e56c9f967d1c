use prometheus::{Counter, IntCounterVec, Opts, Registry};
use rust_decimal::{prelude::ToPrimitive, Decimal};

/// `payments_total{status,method}` and `payment_amount_total`.
#[derive(Clone)]
pub struct PaymentMetrics {
    payments: IntCounterVec,
    amount: Counter,
}

impl PaymentMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let payments = IntCounterVec::new(
            Opts::new(
                "payments_total",
                "Payments by outcome (authorized, declined, failed) and method.",
            ),
            &["status", "method"],
        )?;
        let amount = Counter::new(
            "payment_amount_total",
            "Sum of authorized payment amounts (currency units).",
        )?;
        registry.register(Box::new(payments.clone()))?;
        registry.register(Box::new(amount.clone()))?;
        // Every combination exists from the start, so failure shares are 0, not absent.
        for status in ["authorized", "declined", "failed"] {
            for method in crate::all_methods() {
                payments.with_label_values(&[status, method.as_str()]);
            }
        }
        Ok(Self { payments, amount })
    }

    pub fn record(&self, status: &str, method: &str, authorized_amount: Option<Decimal>) {
        self.payments.with_label_values(&[status, method]).inc();
        if let Some(amount) = authorized_amount.and_then(|a| a.to_f64()) {
            self.amount.inc_by(amount);
        }
    }
}
