//! The cart as JSON: `POST /cart/items` adds a product, `DELETE /cart` empties the cart.

use poem::{http::StatusCode, Request};
use poem_openapi::{
    payload::{Json, Response},
    ApiResponse, Object, OpenApi, Tags,
};
use shop_telemetry::ErrorBody;

use crate::{
    cart::Cart,
    context::{with_session, Context, Failure},
    metrics::Page,
};

#[derive(Tags)]
enum ApiTags {
    /// The session's cart and checkout.
    Cart,
}

pub struct CartApi {
    ctx: Context,
}

impl CartApi {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

#[derive(Debug, Clone, Object)]
struct AddItem {
    /// The product to add; it must exist.
    product_id: i32,
    /// Units to add, 1 to 100.
    #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
    quantity: i32,
}

#[derive(Debug, Clone, Object)]
pub struct CartItem {
    pub product_id: i32,
    pub quantity: i32,
}

/// The session's cart.
#[derive(Debug, Clone, Object)]
pub struct CartView {
    pub items: Vec<CartItem>,
}

impl From<&Cart> for CartView {
    fn from(cart: &Cart) -> Self {
        Self {
            items: cart
                .lines()
                .iter()
                .map(|l| CartItem {
                    product_id: l.product_id,
                    quantity: l.quantity,
                })
                .collect(),
        }
    }
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_add")]
enum AddResponse {
    /// Added; the whole cart.
    #[oai(status = 201)]
    Added(Json<CartView>),
    /// Malformed request or values out of range.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No such product.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The cart cannot take it: at most 100 units of a product and 50 products.
    #[oai(status = 409)]
    CartFull(Json<ErrorBody>),
    /// The shop holds as many carts as it can; a new one must wait until some expire.
    #[oai(status = 503)]
    TooManyCarts(Json<ErrorBody>),
    /// Another refusal by the API, passed on with its status.
    #[oai(status_range = "4XX")]
    Refused(StatusCode, Json<ErrorBody>),
    /// The API is unreachable, timed out or failed.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
}

fn bad_add(err: poem::Error) -> AddResponse {
    AddResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

impl From<Failure> for AddResponse {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused(StatusCode::NOT_FOUND, body) => Self::NotFound(Json(body)),
            Failure::Refused(status, body) => Self::Refused(status, Json(body)),
            Failure::Upstream(body) => Self::BadGateway(Json(body)),
        }
    }
}

#[derive(ApiResponse)]
enum ClearResponse {
    /// The cart, now empty.
    #[oai(status = 200)]
    Cleared(Json<CartView>),
}

#[OpenApi(tag = "ApiTags::Cart")]
impl CartApi {
    /// Adds units of a product to the session's cart; the first write creates the session
    /// (and sets its cookie).
    #[oai(path = "/cart/items", method = "post")]
    async fn add(&self, req: &Request, body: Json<AddItem>) -> Response<AddResponse> {
        let AddItem {
            product_id,
            quantity,
        } = body.0;
        // The product must exist before a session is made for it.
        if let Err(err) = self.ctx.api.product(product_id).await {
            let session = self.ctx.session(req);
            return Response::new(self.ctx.failure(Page::Cart, session.as_ref(), err).into());
        }
        let session = match self.ctx.session_for_cart(req) {
            Ok(session) => session,
            Err(full) => {
                log::warn!(event = "sessions_full"; "refused a new cart: {full}");
                return Response::new(AddResponse::TooManyCarts(Json(ErrorBody::new(
                    full.to_string(),
                ))))
                .header("retry-after", "60");
            }
        };
        let added = self.ctx.sessions.with_cart(&session, |cart| {
            cart.add(product_id, quantity)
                .map(|()| CartView::from(&*cart))
        });
        let response = match added {
            Ok(view) => {
                log::info!(
                    event = "cart_item_added", session = session.tag(), product_id = product_id,
                    quantity = quantity;
                    "added {quantity} x product {product_id} to a cart"
                );
                AddResponse::Added(Json(view))
            }
            Err(err) => AddResponse::CartFull(Json(ErrorBody::new(err.to_string()))),
        };
        with_session(response, &session)
    }

    /// Empties the session's cart.
    #[oai(path = "/cart", method = "delete")]
    async fn clear(&self, req: &Request) -> ClearResponse {
        if let Some(session) = self.ctx.session(req) {
            let removed = self
                .ctx
                .sessions
                .with_cart(&session, |cart| cart.take().len());
            if removed > 0 {
                log::info!(event = "cart_cleared", session = session.tag(), lines = removed; "emptied a cart of {removed} product(s)");
            }
        }
        ClearResponse::Cleared(Json(CartView { items: Vec::new() }))
    }
}
