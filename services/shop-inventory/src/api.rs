use poem::Request;
use poem_openapi::{param::Path, payload::Json, ApiResponse, Enum, Object, OpenApi, Tags};
use shop_db::{models::Product, Database, DbError};
use shop_telemetry::{bearer::TokenRejection, BearerToken, ErrorBody};

use crate::store::{self, RestockOutcome, MAX_STOCK};

#[derive(Tags)]
enum ApiTags {
    /// Stock levels.
    Stock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum StockStatus {
    Ok,
    /// At or below the threshold.
    Low,
    /// At or below a quarter of the threshold, or out of stock.
    Critical,
}

#[derive(Debug, Clone, Object)]
pub struct StockItem {
    pub product_id: i32,
    pub product_name: String,
    pub stock_level: i32,
    pub low_stock_threshold: i32,
    pub status: StockStatus,
}

impl From<Product> for StockItem {
    fn from(p: Product) -> Self {
        let status = if p.is_critical() {
            StockStatus::Critical
        } else if p.is_low() {
            StockStatus::Low
        } else {
            StockStatus::Ok
        };
        Self {
            product_id: p.id,
            product_name: p.name,
            stock_level: p.stock_level,
            low_stock_threshold: p.low_stock_threshold,
            status,
        }
    }
}

#[derive(Debug, Clone, Object)]
struct SetLevel {
    /// The counted number of units (a stock take).
    #[oai(validator(minimum(value = "0"), maximum(value = "1000000")))]
    stock_level: i32,
}

#[derive(Debug, Clone, Object)]
struct Restock {
    /// Units received.
    #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
    quantity: i32,
}

pub struct StockApi {
    db: Database,
    /// The operator token (`--fault-token-file`): changing stock is an operator action, like
    /// injecting a fault. Without one, stock cannot be changed over HTTP at all.
    operator: Option<BearerToken>,
}

impl StockApi {
    pub fn new(db: Database, operator: Option<BearerToken>) -> Self {
        Self { db, operator }
    }

    /// Admits only a caller with the operator token.
    fn authorize(&self, req: &Request, action: &str) -> Result<(), UpdateResponse> {
        let Some(token) = &self.operator else {
            return Err(UpdateResponse::Forbidden(Json(ErrorBody::new(
                "stock changes are disabled: the service has no operator token (--fault-token-file)",
            ))));
        };
        token.check(req).map_err(|rejection| {
            let reason = match rejection {
                TokenRejection::Missing => "missing_token",
                TokenRejection::Wrong => "wrong_token",
            };
            log::warn!(
                event = "stock_change_refused", action = action, reason = reason,
                peer:% = req.remote_addr();
                "{action} refused: {reason}"
            );
            UpdateResponse::Unauthorized(Json(ErrorBody::new(
                "stock changes need `Authorization: Bearer <operator token>` (the token of --fault-token-file)",
            )))
        })
    }
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_list")]
enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<StockItem>>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn bad_list(err: poem::Error) -> ListResponse {
    ListResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_update")]
enum UpdateResponse {
    #[oai(status = 200)]
    Ok(Json<StockItem>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No valid operator token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The service has no operator token, so stock cannot be changed over HTTP.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The level would exceed the maximum.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn bad_update(err: poem::Error) -> UpdateResponse {
    UpdateResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

/// 503 while PostgreSQL is unreachable, 500 otherwise; the cause goes to the log only.
fn db_failure(err: &DbError, action: &str) -> (bool, Json<ErrorBody>) {
    if err.is_unavailable() {
        log::error!(event = "database_unavailable", action = action, cause:% = err; "database unavailable while {action}: {err}");
        (
            true,
            Json(ErrorBody::new(
                "the database is unavailable; try again shortly",
            )),
        )
    } else {
        log::error!(event = "database_error", action = action, cause = format!("{err:?}").as_str(); "database error while {action}: {err}");
        (false, Json(ErrorBody::new("internal error")))
    }
}

impl ListResponse {
    fn failed(err: &DbError, action: &str) -> Self {
        match db_failure(err, action) {
            (true, body) => Self::Unavailable(body),
            (false, body) => Self::Internal(body),
        }
    }
}

impl UpdateResponse {
    fn failed(err: &DbError, action: &str) -> Self {
        match db_failure(err, action) {
            (true, body) => Self::Unavailable(body),
            (false, body) => Self::Internal(body),
        }
    }

    fn not_found(id: i32) -> Self {
        Self::NotFound(Json(ErrorBody::new(format!("no product with id {id}"))))
    }
}

#[OpenApi(tag = "ApiTags::Stock")]
impl StockApi {
    /// Stock of every product.
    #[oai(path = "/stock", method = "get")]
    async fn list(&self) -> ListResponse {
        match self.db.run(store::all_products).await {
            Ok(products) => ListResponse::Ok(Json(products.into_iter().map(Into::into).collect())),
            Err(err) => ListResponse::failed(&err, "listing stock"),
        }
    }

    /// Products at or below their low-stock threshold.
    #[oai(path = "/stock/low", method = "get")]
    async fn low(&self) -> ListResponse {
        match self.db.run(store::all_products).await {
            Ok(products) => ListResponse::Ok(Json(
                products
                    .into_iter()
                    .filter(Product::is_low)
                    .map(Into::into)
                    .collect(),
            )),
            Err(err) => ListResponse::failed(&err, "listing low stock"),
        }
    }

    /// Sets a product's stock level (a stock take). Needs the operator token.
    #[oai(path = "/stock/:product_id", method = "put")]
    async fn set_level(
        &self,
        req: &Request,
        product_id: Path<i32>,
        body: Json<SetLevel>,
    ) -> UpdateResponse {
        if let Err(refused) = self.authorize(req, "setting a stock level") {
            return refused;
        }
        let (id, level) = (product_id.0, body.0.stock_level);
        match self
            .db
            .run(move |conn| store::set_stock(conn, id, level))
            .await
        {
            Ok(Some(product)) => {
                log::info!(
                    event = "stock_adjusted", product_id = id, product_name = product.name.as_str(), new_level = level;
                    "stock of {} set to {level}", product.name
                );
                UpdateResponse::Ok(Json(product.into()))
            }
            Ok(None) => UpdateResponse::not_found(id),
            Err(err) => UpdateResponse::failed(&err, "setting a stock level"),
        }
    }

    /// Adds received units to a product's stock. Needs the operator token.
    #[oai(path = "/stock/:product_id/restock", method = "post")]
    async fn restock(
        &self,
        req: &Request,
        product_id: Path<i32>,
        body: Json<Restock>,
    ) -> UpdateResponse {
        if let Err(refused) = self.authorize(req, "restocking") {
            return refused;
        }
        let (id, quantity) = (product_id.0, body.0.quantity);
        match self
            .db
            .run(move |conn| store::add_stock(conn, id, quantity))
            .await
        {
            Ok(RestockOutcome::Restocked(product)) => {
                log::info!(
                    event = "stock_replenished", product_id = id, product_name = product.name.as_str(),
                    quantity = quantity, new_level = product.stock_level;
                    "received {quantity} of {}", product.name
                );
                UpdateResponse::Ok(Json(product.into()))
            }
            Ok(RestockOutcome::UnknownProduct) => UpdateResponse::not_found(id),
            Ok(RestockOutcome::TooMuch) => UpdateResponse::Conflict(Json(ErrorBody::new(format!(
                "the stock level would exceed {MAX_STOCK}"
            )))),
            Err(err) => UpdateResponse::failed(&err, "restocking"),
        }
    }
}
