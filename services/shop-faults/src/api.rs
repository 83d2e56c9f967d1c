use poem::Request;
use poem_openapi::{param::Query, payload::Json, ApiResponse, Object, OpenApi, Tags};
use shop_telemetry::ErrorBody;

use crate::{access::Refusal, ActiveFault, FaultKind, FaultSpec, Faults};

#[derive(Tags)]
enum ApiTags {
    /// Failure injection for the alerting lab.
    Faults,
}

/// `GET|POST|DELETE /admin/faults`.
pub struct FaultsApi {
    faults: Faults,
}

impl FaultsApi {
    pub fn new(faults: Faults) -> Self {
        Self { faults }
    }

    fn authorize(&self, req: &Request) -> Result<(), Denied> {
        self.faults.access().check(req).map_err(|refusal| {
            let body = Json(ErrorBody::new(refusal.message()));
            match refusal {
                Refusal::BadToken => Denied::Unauthorized(body),
                Refusal::Disabled | Refusal::NoTokenConfigured | Refusal::Forbidden(_) => {
                    Denied::Forbidden(body)
                }
            }
        })
    }
}

#[derive(ApiResponse)]
enum Denied {
    /// No token, or the wrong one.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Fault injection is disabled, or the request came from a web page, through a proxy, or
    /// was addressed to another host.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
}

#[derive(Object)]
struct FaultList {
    faults: Vec<ActiveFault>,
    supported_kinds: Vec<FaultKind>,
}

#[derive(Object)]
struct Cleared {
    cleared: u64,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_request")]
enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<FaultList>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_request_set")]
enum SetResponse {
    /// The fault is in force.
    #[oai(status = 201)]
    Created(Json<ActiveFault>),
    /// The body is not a valid fault for this service.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_request_clear")]
enum ClearResponse {
    #[oai(status = 200)]
    Ok(Json<Cleared>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
}

fn bad_request(err: poem::Error) -> ListResponse {
    ListResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}
fn bad_request_set(err: poem::Error) -> SetResponse {
    SetResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}
fn bad_request_clear(err: poem::Error) -> ClearResponse {
    ClearResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

macro_rules! denied_into {
    ($ty:ident) => {
        impl From<Denied> for $ty {
            fn from(denied: Denied) -> Self {
                match denied {
                    Denied::Unauthorized(body) => Self::Unauthorized(body),
                    Denied::Forbidden(body) => Self::Forbidden(body),
                }
            }
        }
    };
}
denied_into!(ListResponse);
denied_into!(SetResponse);
denied_into!(ClearResponse);

#[OpenApi(tag = "ApiTags::Faults")]
impl FaultsApi {
    /// The faults in force and the kinds this service supports.
    #[oai(path = "/admin/faults", method = "get")]
    async fn list(&self, req: &Request) -> ListResponse {
        if let Err(denied) = self.authorize(req) {
            return denied.into();
        }
        ListResponse::Ok(Json(FaultList {
            faults: self.faults.list(),
            supported_kinds: self.faults.supported().to_vec(),
        }))
    }

    /// Sets a fault for `duration_seconds`; it replaces a fault of the same kind and method.
    #[oai(path = "/admin/faults", method = "post")]
    async fn set(&self, req: &Request, spec: Json<FaultSpec>) -> SetResponse {
        if let Err(denied) = self.authorize(req) {
            return denied.into();
        }
        match self.faults.set(spec.0) {
            Ok(active) => SetResponse::Created(Json(active)),
            Err(err) => SetResponse::BadRequest(Json(ErrorBody::new(err.to_string()))),
        }
    }

    /// Clears every fault, or only those of `kind`.
    #[oai(path = "/admin/faults", method = "delete")]
    async fn clear(&self, req: &Request, kind: Query<Option<FaultKind>>) -> ClearResponse {
        if let Err(denied) = self.authorize(req) {
            return denied.into();
        }
        ClearResponse::Ok(Json(Cleared {
            cleared: self.faults.clear(kind.0) as u64,
        }))
    }
}
