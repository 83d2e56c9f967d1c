//! `POST /payments` and `POST /refunds`, with an in-memory ledger of recent transactions. Both
//! take money or give it back, so both answer only callers with the bearer token of
//! `--payment-token-file` (the API service).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi, Tags};
use rand::{seq::IndexedRandom, Rng};
use rust_decimal::Decimal;
use shop_faults::Faults;
use shop_telemetry::{bearer::TokenRejection, BearerToken, ErrorBody};

use crate::{
    client::{PaymentMethod, PaymentOutcome, PaymentRequest},
    metrics::PaymentMetrics,
};

/// Transactions kept for refunds; the oldest are forgotten beyond this, bounding memory.
const LEDGER_CAPACITY: usize = 100_000;
const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

const ORDINARY_DECLINES: &[&str] = &["insufficient_funds", "do_not_honor", "expired_instrument"];

#[derive(Tags)]
enum ApiTags {
    /// Authorizations and refunds.
    Payments,
}

#[derive(Debug, Clone)]
struct Transaction {
    amount: Decimal,
    refunded: Decimal,
}

#[derive(Default)]
struct Ledger {
    transactions: HashMap<String, Transaction>,
    order: VecDeque<String>,
}

impl Ledger {
    fn insert(&mut self, id: String, tx: Transaction) {
        if self.order.len() >= LEDGER_CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.transactions.remove(&oldest);
            }
        }
        self.order.push_back(id.clone());
        self.transactions.insert(id, tx);
    }
}

pub struct PaymentsApi {
    faults: Faults,
    metrics: PaymentMetrics,
    decline_rate: f64,
    /// What callers (the API service) must present: only they may take or refund money.
    token: BearerToken,
    ledger: Arc<Mutex<Ledger>>,
}

impl PaymentsApi {
    pub fn new(
        faults: Faults,
        metrics: PaymentMetrics,
        decline_rate: f64,
        token: BearerToken,
    ) -> Self {
        Self {
            faults,
            metrics,
            decline_rate,
            token,
            ledger: Arc::default(),
        }
    }

    /// The caller's token, or the JSON error to answer with (401).
    fn authenticate(&self, req: &Request, action: &str) -> Result<(), Json<ErrorBody>> {
        self.token.check(req).map_err(|rejection| {
            let (reason, message) = match rejection {
                TokenRejection::Missing => (
                    "missing_token",
                    "`Authorization: Bearer <token>` is required (the token of --payment-token-file)",
                ),
                TokenRejection::Wrong => ("wrong_token", "the bearer token is not valid"),
            };
            log::warn!(
                event = "payment_request_refused", action = action, reason = reason,
                peer:% = req.remote_addr();
                "{action} refused: {reason}"
            );
            Json(ErrorBody::new(message))
        })
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Clone, Object)]
struct RefundRequest {
    /// The authorization to refund.
    #[oai(validator(min_length = 1, max_length = 64))]
    transaction_id: String,
    /// Amount to refund; the whole remaining amount when absent.
    amount: Option<Decimal>,
}

#[derive(Debug, Clone, Object)]
struct Refund {
    refund_id: String,
    transaction_id: String,
    amount: Decimal,
    /// What is left to refund on the transaction.
    remaining: Decimal,
    refunded_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_payment")]
enum PaymentResponse {
    /// Authorized.
    #[oai(status = 200)]
    Authorized(Json<PaymentOutcome>),
    /// The request is malformed or its values are out of range.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No valid `Authorization: Bearer` token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Declined: an ordinary decline (`status` declined) or the method's processor is
    /// unavailable (`status` failed). No money moved.
    #[oai(status = 402)]
    Declined(Json<PaymentOutcome>),
}

fn bad_payment(err: poem::Error) -> PaymentResponse {
    PaymentResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_refund")]
enum RefundResponse {
    #[oai(status = 200)]
    Refunded(Json<Refund>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No valid `Authorization: Bearer` token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such transaction (or it is too old to be remembered).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The amount exceeds what is left to refund.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
}

fn bad_refund(err: poem::Error) -> RefundResponse {
    RefundResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

fn valid_amount(amount: Decimal) -> Result<(), String> {
    if amount <= Decimal::ZERO || amount > MAX_AMOUNT {
        return Err(format!(
            "`amount` must be above 0 and at most {MAX_AMOUNT}, got {amount}"
        ));
    }
    if amount.normalize().scale() > 2 {
        return Err(format!("`amount` has more than 2 decimal places: {amount}"));
    }
    Ok(())
}

#[OpenApi(tag = "ApiTags::Payments")]
impl PaymentsApi {
    /// Authorizes a payment.
    #[oai(path = "/payments", method = "post")]
    async fn authorize(&self, req: &Request, body: Json<PaymentRequest>) -> PaymentResponse {
        if let Err(body) = self.authenticate(req, "payment") {
            return PaymentResponse::Unauthorized(body);
        }
        let request = body.0;
        if let Err(message) = valid_amount(request.amount) {
            return PaymentResponse::BadRequest(Json(ErrorBody::new(message)));
        }
        let method = request.method.as_str();
        let transaction_id = format!("txn_{}", uuid::Uuid::new_v4().simple());
        let mut rng = rand::rng();
        let injected = self.faults.decline_rate(method);
        let outcome = |status: &str, reason: Option<&str>| PaymentOutcome {
            transaction_id: transaction_id.clone(),
            status: status.to_owned(),
            reason: reason.map(str::to_owned),
            order_ref: request.order_ref.clone(),
            amount: request.amount,
            method: request.method,
        };
        if injected > 0.0 && rng.random_bool(injected.min(1.0)) {
            self.metrics.record("failed", method, None);
            log::error!(
                event = "payment_failed", reason = "processor_unavailable", method = method,
                transaction_id = transaction_id.as_str(), order_ref = request.order_ref.as_str(),
                amount:% = request.amount;
                "payment {transaction_id} failed: the {method} processor is unavailable"
            );
            return PaymentResponse::Declined(Json(outcome(
                "failed",
                Some("processor_unavailable"),
            )));
        }
        if self.decline_rate > 0.0 && rng.random_bool(self.decline_rate) {
            let reason = ORDINARY_DECLINES
                .choose(&mut rng)
                .copied()
                .unwrap_or("do_not_honor");
            self.metrics.record("declined", method, None);
            log::warn!(
                event = "payment_declined", reason = reason, method = method,
                transaction_id = transaction_id.as_str(), order_ref = request.order_ref.as_str(),
                amount:% = request.amount;
                "payment {transaction_id} declined: {reason}"
            );
            return PaymentResponse::Declined(Json(outcome("declined", Some(reason))));
        }
        self.ledger().insert(
            transaction_id.clone(),
            Transaction {
                amount: request.amount,
                refunded: Decimal::ZERO,
            },
        );
        self.metrics
            .record("authorized", method, Some(request.amount));
        log::info!(
            event = "payment_authorized", method = method,
            transaction_id = transaction_id.as_str(), order_ref = request.order_ref.as_str(),
            amount:% = request.amount;
            "payment {transaction_id} authorized"
        );
        PaymentResponse::Authorized(Json(outcome("authorized", None)))
    }

    /// Refunds an authorized payment, wholly or in part.
    #[oai(path = "/refunds", method = "post")]
    async fn refund(&self, req: &Request, body: Json<RefundRequest>) -> RefundResponse {
        if let Err(body) = self.authenticate(req, "refund") {
            return RefundResponse::Unauthorized(body);
        }
        let request = body.0;
        let mut ledger = self.ledger();
        let Some(tx) = ledger.transactions.get_mut(&request.transaction_id) else {
            return RefundResponse::NotFound(Json(ErrorBody::new(format!(
                "unknown transaction `{}`",
                request.transaction_id
            ))));
        };
        let remaining = tx.amount - tx.refunded;
        let amount = request.amount.unwrap_or(remaining);
        if let Err(message) = valid_amount(amount) {
            return if remaining.is_zero() {
                RefundResponse::Conflict(Json(ErrorBody::new(
                    "the transaction is already fully refunded",
                )))
            } else {
                RefundResponse::BadRequest(Json(ErrorBody::new(message)))
            };
        }
        if amount > remaining {
            return RefundResponse::Conflict(Json(ErrorBody::new(format!(
                "refund of {amount} exceeds the {remaining} left on the transaction"
            ))));
        }
        tx.refunded += amount;
        let refund = Refund {
            refund_id: format!("rfd_{}", uuid::Uuid::new_v4().simple()),
            transaction_id: request.transaction_id,
            amount,
            remaining: tx.amount - tx.refunded,
            refunded_at: Utc::now(),
        };
        log::info!(
            event = "refund_issued", refund_id = refund.refund_id.as_str(),
            transaction_id = refund.transaction_id.as_str(), amount:% = amount;
            "refunded {amount} on {}", refund.transaction_id
        );
        RefundResponse::Refunded(Json(refund))
    }
}

/// All payment methods, for tests and the traffic generator.
pub fn all_methods() -> &'static [PaymentMethod] {
    &[
        PaymentMethod::Card,
        PaymentMethod::Paypal,
        PaymentMethod::BankTransfer,
        PaymentMethod::GiftCard,
    ]
}
