//! The payment service's wire contract and a client for it (used by the API service).

use std::time::Duration;

use poem_openapi::{Enum, Object};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shop_telemetry::BearerToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Card,
    Paypal,
    BankTransfer,
    GiftCard,
}

impl PaymentMethod {
    /// Every method's wire name (what a `decline_rate` fault may name).
    pub const NAMES: [&'static str; 4] = [
        Self::Card.as_str(),
        Self::Paypal.as_str(),
        Self::BankTransfer.as_str(),
        Self::GiftCard.as_str(),
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Paypal => "paypal",
            Self::BankTransfer => "bank_transfer",
            Self::GiftCard => "gift_card",
        }
    }
}

#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct PaymentRequest {
    /// The caller's reference, e.g. `order-42`.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub order_ref: String,
    /// Amount in currency units, above 0, at most 2 decimals.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub method: PaymentMethod,
}

#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct PaymentOutcome {
    pub transaction_id: String,
    /// authorized, declined (ordinary decline) or failed (processor unavailable).
    pub status: String,
    /// Why it was declined or failed.
    pub reason: Option<String>,
    pub order_ref: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub method: PaymentMethod,
}

/// What the API needs to know about a payment attempt.
#[derive(Debug, Clone)]
pub enum PaymentResult {
    Authorized { transaction_id: String },
    Declined { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentClientError {
    #[error("payment service unreachable or timed out")]
    Unavailable(#[source] reqwest::Error),
    #[error("payment service answered {status}: {body}")]
    Unexpected { status: u16, body: String },
}

/// A client of the payment service; every call carries the service's bearer token.
#[derive(Clone)]
pub struct PaymentClient {
    base_url: String,
    token: BearerToken,
    http: reqwest::Client,
}

impl PaymentClient {
    /// `timeout` bounds one call; the API answers 503 beyond it.
    pub fn new(
        base_url: &str,
        timeout: Duration,
        token: BearerToken,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(Duration::from_secs(1))
                .build()?,
        })
    }

    pub async fn authorize(
        &self,
        request: &PaymentRequest,
    ) -> Result<PaymentResult, PaymentClientError> {
        let response = self
            .http
            .post(format!("{}/payments", self.base_url))
            .bearer_auth(self.token.expose())
            .json(request)
            .send()
            .await
            .map_err(PaymentClientError::Unavailable)?;
        let status = response.status().as_u16();
        match status {
            200 | 402 => {
                let outcome: PaymentOutcome = response
                    .json()
                    .await
                    .map_err(PaymentClientError::Unavailable)?;
                Ok(if status == 200 {
                    PaymentResult::Authorized {
                        transaction_id: outcome.transaction_id,
                    }
                } else {
                    PaymentResult::Declined {
                        reason: outcome.reason.unwrap_or_else(|| "declined".to_owned()),
                    }
                })
            }
            _ => Err(PaymentClientError::Unexpected {
                status,
                body: response.text().await.unwrap_or_default(),
            }),
        }
    }

    /// Refunds a whole transaction.
    pub async fn refund(&self, transaction_id: &str) -> Result<(), PaymentClientError> {
        let response = self
            .http
            .post(format!("{}/refunds", self.base_url))
            .bearer_auth(self.token.expose())
            .json(&serde_json::json!({ "transaction_id": transaction_id }))
            .send()
            .await
            .map_err(PaymentClientError::Unavailable)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(PaymentClientError::Unexpected {
                status: response.status().as_u16(),
                body: response.text().await.unwrap_or_default(),
            })
        }
    }
}
