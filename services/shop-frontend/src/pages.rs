//! The HTML pages: home (the catalog), a product, the cart.

use poem::{http::StatusCode, Request};
use poem_openapi::{
    param::Path,
    payload::{Html, Json},
    ApiResponse, OpenApi, Tags,
};
use shop_telemetry::ErrorBody;
use tokio::task::JoinSet;

use crate::{
    api_client::{ApiError, Product},
    context::{Context, Failure},
    metrics::Page,
    render::{self, CartRow},
};

#[derive(Tags)]
enum ApiTags {
    /// Pages rendered from the API's data.
    Pages,
}

pub struct PagesApi {
    ctx: Context,
}

impl PagesApi {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_page")]
pub enum PageResponse {
    /// The rendered page.
    #[oai(status = 200)]
    Ok(Html<String>),
    /// Malformed request, e.g. a product id that is not a number.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No such product.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Another refusal by the API, passed on with its status.
    #[oai(status_range = "4XX")]
    Refused(StatusCode, Json<ErrorBody>),
    /// The API is unreachable, timed out or failed.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
}

fn bad_page(err: poem::Error) -> PageResponse {
    PageResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

impl From<Failure> for PageResponse {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused(StatusCode::NOT_FOUND, body) => Self::NotFound(Json(body)),
            Failure::Refused(status, body) => Self::Refused(status, Json(body)),
            Failure::Upstream(body) => Self::BadGateway(Json(body)),
        }
    }
}

#[OpenApi(tag = "ApiTags::Pages")]
impl PagesApi {
    /// The home page: the product catalog.
    #[oai(path = "/", method = "get")]
    async fn home(&self, req: &Request) -> PageResponse {
        let session = self.ctx.session(req);
        let units = self.ctx.cart_units(session.as_ref());
        match self.ctx.api.products().await {
            Ok(products) => {
                self.ctx.rendered(Page::Home, session.as_ref());
                PageResponse::Ok(Html(render::home(&products, units)))
            }
            Err(err) => self.ctx.failure(Page::Home, session.as_ref(), err).into(),
        }
    }

    /// A product's page.
    #[oai(path = "/products/:id", method = "get")]
    async fn product(&self, req: &Request, id: Path<i32>) -> PageResponse {
        let session = self.ctx.session(req);
        let units = self.ctx.cart_units(session.as_ref());
        match self.ctx.api.product(id.0).await {
            Ok(product) => {
                self.ctx.rendered(Page::Product, session.as_ref());
                PageResponse::Ok(Html(render::product(&product, units)))
            }
            Err(err) => self
                .ctx
                .failure(Page::Product, session.as_ref(), err)
                .into(),
        }
    }

    /// The cart page: the session's cart with names and prices from the API.
    #[oai(path = "/cart", method = "get")]
    async fn cart(&self, req: &Request) -> PageResponse {
        let session = self.ctx.session(req);
        let cart = session
            .as_ref()
            .map(|s| self.ctx.sessions.cart(s))
            .unwrap_or_default();
        match self.look_up(cart.lines()).await {
            Ok(rows) => {
                self.ctx.rendered(Page::Cart, session.as_ref());
                PageResponse::Ok(Html(render::cart(&rows, cart.units())))
            }
            Err(err) => self.ctx.failure(Page::Cart, session.as_ref(), err).into(),
        }
    }
}

impl PagesApi {
    /// The cart's products, looked up at the same time. A product the API no longer knows is
    /// shown as unavailable; the API failing fails the page.
    async fn look_up(&self, lines: &[crate::cart::CartLine]) -> Result<Vec<CartRow>, ApiError> {
        let mut lookups = JoinSet::new();
        for (index, line) in lines.iter().enumerate() {
            let api = self.ctx.api.clone();
            let product_id = line.product_id;
            lookups.spawn(async move { (index, api.product(product_id).await) });
        }
        let mut products: Vec<Option<Product>> = vec![None; lines.len()];
        while let Some(joined) = lookups.join_next().await {
            match joined {
                Ok((index, Ok(product))) => products[index] = Some(product),
                Ok((_, Err(ApiError::Client { .. }))) => {}
                // Dropping the set cancels the other lookups.
                Ok((_, Err(err))) => return Err(err),
                Err(err) => {
                    return Err(ApiError::Unreachable(format!(
                        "a product lookup did not finish: {err}"
                    )))
                }
            }
        }
        Ok(lines
            .iter()
            .zip(products)
            .map(|(line, product)| CartRow {
                product_id: line.product_id,
                quantity: line.quantity,
                product,
            })
            .collect())
    }
}
