//! A client of the API service: the catalog and orders.

use std::{net::IpAddr, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::settings::api_base_url;

/// A product as the API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: i32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A decimal string with two decimals (`149.00`).
    pub price: String,
    pub stock_level: i32,
    pub in_stock: bool,
}

/// `POST /orders` of the API.
#[derive(Debug, Clone, Serialize)]
pub struct NewOrder<'a> {
    pub product_id: i32,
    pub quantity: i32,
    pub payment_method: &'a str,
}

/// Who an order is for: the visitor's `Authorization` header (a customer session from the
/// API's `POST /login`, passed on as it came) and address. The frontend is the proxy in front
/// of the API, so it tells the API the address it saw (`X-Forwarded-For`), which the API's
/// per-address order limit and `--trusted-proxies 1` rely on.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderedBy<'a> {
    pub authorization: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
}

/// What the API made of an order it accepted to consider.
#[derive(Debug, Clone)]
pub enum OrderOutcome {
    /// 201: paid and completed; the API's order.
    Completed(Value),
    /// 402: the payment was declined; the API's body (`error`, and the failed `order`).
    Declined(Value),
    /// 409: not enough stock; the API's message.
    InsufficientStock(String),
}

/// Why a call did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Nothing usable came back: connection refused, reset, timed out.
    #[error("the API is unreachable or did not answer in time: {0}")]
    Unreachable(String),
    /// The API failed (5xx).
    #[error("the API answered {status}: {message}")]
    Server { status: u16, message: String },
    /// The API refused the request (4xx); its message is meant for the client.
    #[error("the API refused the request ({status}): {message}")]
    Client { status: u16, message: String },
    /// A success status with a body that is not what the API promises.
    #[error("the API answered {status} with an unexpected body: {cause}")]
    BadResponse { status: u16, cause: String },
}

impl ApiError {
    fn unreachable(err: reqwest::Error) -> Self {
        Self::Unreachable(error_chain(&err))
    }
}

/// `outer: inner: innermost`, for logs.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[derive(Clone)]
pub struct ApiClient {
    base_url: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// `timeout` bounds one call, connecting included.
    pub fn new(base_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            base_url: api_base_url(base_url)?,
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(2)))
                .user_agent(concat!("shop-frontend/", env!("CARGO_PKG_VERSION")))
                .build()?,
        })
    }

    /// The catalog (the API's first 100 products).
    pub async fn products(&self) -> Result<Vec<Product>, ApiError> {
        let response = self
            .http
            .get(format!("{}/products?limit=100", self.base_url))
            .send()
            .await
            .map_err(ApiError::unreachable)?;
        decode(success(response).await?).await
    }

    pub async fn product(&self, id: i32) -> Result<Product, ApiError> {
        let response = self
            .http
            .get(format!("{}/products/{id}", self.base_url))
            .send()
            .await
            .map_err(ApiError::unreachable)?;
        decode(success(response).await?).await
    }

    /// Places one order. 402 and 409 are outcomes, not errors: the shop worked.
    pub async fn create_order(
        &self,
        order: &NewOrder<'_>,
        by: OrderedBy<'_>,
    ) -> Result<OrderOutcome, ApiError> {
        let mut request = self
            .http
            .post(format!("{}/orders", self.base_url))
            .json(order);
        if let Some(authorization) = by.authorization {
            request = request.header("authorization", authorization);
        }
        // Exactly one entry, the address this frontend saw: whatever the visitor sent in its
        // own X-Forwarded-For is not passed on, so it cannot pose as someone else.
        if let Some(ip) = by.client_ip {
            request = request.header("x-forwarded-for", ip.to_string());
        }
        let response = request.send().await.map_err(ApiError::unreachable)?;
        match response.status().as_u16() {
            201 => decode(response).await.map(OrderOutcome::Completed),
            402 => decode(response).await.map(OrderOutcome::Declined),
            409 => {
                let body: Value = decode(response).await?;
                Ok(OrderOutcome::InsufficientStock(message_of(&body)))
            }
            _ => Err(failure(response).await),
        }
    }
}

/// The response when its status is a success, else the matching error.
async fn success(response: reqwest::Response) -> Result<reqwest::Response, ApiError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(failure(response).await)
    }
}

async fn failure(response: reqwest::Response) -> ApiError {
    let status = response.status().as_u16();
    let text = match response.text().await {
        Ok(text) => text,
        Err(err) => return ApiError::unreachable(err),
    };
    let message = serde_json::from_str::<Value>(&text)
        .map(|body| message_of(&body))
        .unwrap_or_else(|_| text.chars().take(200).collect());
    if (400..500).contains(&status) {
        ApiError::Client { status, message }
    } else {
        ApiError::Server { status, message }
    }
}

async fn decode<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ApiError> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(ApiError::unreachable)?;
    serde_json::from_slice(&bytes).map_err(|err| ApiError::BadResponse {
        status,
        cause: err.to_string(),
    })
}

fn message_of(body: &Value) -> String {
    body.get("error")
        .and_then(Value::as_str)
        .map_or_else(|| body.to_string(), str::to_owned)
}
