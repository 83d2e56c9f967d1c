use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    ApiResponse, OpenApi, Tags,
};
use shop_db::Database;
use shop_telemetry::ErrorBody;

use super::{db_failure, db_failure_into, ProductView};
use crate::store;

#[derive(Tags)]
enum ApiTags {
    /// The product catalog.
    Products,
}

pub struct ProductsApi {
    db: Database,
}

impl ProductsApi {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_list")]
enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<ProductView>>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
db_failure_into!(ListResponse);

fn bad_list(err: poem::Error) -> ListResponse {
    ListResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_get")]
enum GetResponse {
    #[oai(status = 200)]
    Ok(Json<ProductView>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
db_failure_into!(GetResponse);

fn bad_get(err: poem::Error) -> GetResponse {
    GetResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

#[OpenApi(tag = "ApiTags::Products")]
impl ProductsApi {
    /// Lists products, optionally those whose name contains `search`.
    #[oai(path = "/products", method = "get")]
    async fn list(
        &self,
        #[oai(validator(max_length = 100))] search: Query<Option<String>>,
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<i64>,
        #[oai(default, validator(minimum(value = "0")))] offset: Query<i64>,
    ) -> ListResponse {
        let search = search.0.filter(|s| !s.trim().is_empty());
        let (limit, offset) = (limit.0, offset.0);
        match self
            .db
            .run(move |conn| store::products::list(conn, search.as_deref(), limit, offset))
            .await
        {
            Ok(products) => ListResponse::Ok(Json(products.into_iter().map(Into::into).collect())),
            Err(err) => db_failure(err, "listing products").into(),
        }
    }

    /// One product.
    #[oai(path = "/products/:id", method = "get")]
    async fn get(&self, id: Path<i32>) -> GetResponse {
        let id = id.0;
        match self
            .db
            .run(move |conn| store::products::get(conn, id))
            .await
        {
            Ok(Some(product)) => GetResponse::Ok(Json(product.into())),
            Ok(None) => {
                GetResponse::NotFound(Json(ErrorBody::new(format!("no product with id {id}"))))
            }
            Err(err) => db_failure(err, "reading a product").into(),
        }
    }
}

fn default_limit() -> i64 {
    50
}
