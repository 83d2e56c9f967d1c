//! Request metrics with bounded cardinality: the `endpoint` label is the route template the
//! request matched (`/products/:id`), never the raw path, and every unmatched path shares one
//! value.
//!
//! The templates come from the service's OpenAPI document rather than from poem's router,
//! which renames path parameters (`/products/:param0`).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Instant,
};

use poem::{
    http::{Method, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

/// The `endpoint` label of requests that matched no route.
pub const UNMATCHED_ENDPOINT: &str = "unmatched";

/// Histogram buckets in seconds: fine below 100 ms where a healthy shop lives, coarse above so
/// latency-spike alerts (hundreds of ms to seconds) can tell p95 apart.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
];

/// The route templates of a service, e.g. `/products/{id}` (OpenAPI) or `/products/:id`.
#[derive(Debug, Clone, Default)]
pub struct RouteTemplates {
    templates: Vec<Template>,
}

#[derive(Debug, Clone)]
struct Template {
    label: String,
    /// `None` for a parameter segment.
    segments: Vec<Option<String>>,
}

impl RouteTemplates {
    pub fn new<S: AsRef<str>>(templates: impl IntoIterator<Item = S>) -> Self {
        let mut templates: Vec<Template> = templates
            .into_iter()
            .map(|t| {
                let segments: Vec<Option<String>> = t
                    .as_ref()
                    .split('/')
                    .skip(1)
                    .map(|seg| {
                        let param =
                            (seg.starts_with('{') && seg.ends_with('}')) || seg.starts_with(':');
                        (!param).then(|| seg.to_owned())
                    })
                    .collect();
                let label = t
                    .as_ref()
                    .split('/')
                    .map(
                        |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(name) => format!(":{name}"),
                            None => seg.to_owned(),
                        },
                    )
                    .collect::<Vec<_>>()
                    .join("/");
                Template { label, segments }
            })
            .collect();
        // Static segments win over parameters (`/stock/low` before `/stock/:id`).
        templates
            .sort_by_key(|t| std::cmp::Reverse(t.segments.iter().filter(|s| s.is_some()).count()));
        Self { templates }
    }

    /// The template `path` matches, or [`UNMATCHED_ENDPOINT`].
    pub fn label(&self, path: &str) -> &str {
        self.label_of(self.position(path))
    }

    /// The index of the template `path` matches (without allocating: this runs per request).
    fn position(&self, path: &str) -> Option<usize> {
        let count = path.split('/').skip(1).count();
        self.templates.iter().position(|t| {
            t.segments.len() == count
                && t.segments
                    .iter()
                    .zip(path.split('/').skip(1))
                    .all(|(want, got)| want.as_deref().is_none_or(|w| w == got))
        })
    }

    fn label_of(&self, position: Option<usize>) -> &str {
        position
            .and_then(|i| self.templates.get(i))
            .map_or(UNMATCHED_ENDPOINT, |t| t.label.as_str())
    }
}

/// The `method` label: the standard methods by name, any other (extension) method as `other`,
/// so clients cannot create series at will.
fn method_label(method: &Method) -> (u8, &'static str) {
    const STANDARD: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    STANDARD
        .iter()
        .zip(0u8..)
        .find(|((m, _), _)| m == method)
        .map_or((u8::MAX, "other"), |((_, label), i)| (i, *label))
}

/// `http_requests_total{method,endpoint,status}` and
/// `http_request_duration_seconds{method,endpoint}`, registered in one application's registry.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    routes: Arc<RouteTemplates>,
    /// The series already in use, by method, endpoint and status: a request updates them
    /// directly instead of hashing its label values to find them (the middleware's cost is
    /// measured by `bench/run`).
    series: Arc<RwLock<HashMap<u64, (IntCounter, Histogram)>>>,
}

impl HttpMetrics {
    pub fn register(
        registry: &Registry,
        routes: RouteTemplates,
    ) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route template and status.",
            ),
            &["method", "endpoint", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request duration in seconds by method and route template.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["method", "endpoint"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            requests,
            duration,
            routes: Arc::new(routes),
            series: Arc::default(),
        })
    }

    fn observe(&self, method: &Method, endpoint: Option<usize>, status: StatusCode, seconds: f64) {
        let (method_index, method) = method_label(method);
        let endpoint_index = endpoint.map_or(u16::MAX, |i| u16::try_from(i).unwrap_or(u16::MAX));
        let key = (u64::from(method_index) << 32)
            | (u64::from(endpoint_index) << 16)
            | u64::from(status.as_u16());
        if let Some((requests, duration)) = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            requests.inc();
            duration.observe(seconds);
            return;
        }
        let endpoint = self.routes.label_of(endpoint);
        let requests = self
            .requests
            .with_label_values(&[method, endpoint, status.as_str()]);
        let duration = self.duration.with_label_values(&[method, endpoint]);
        requests.inc();
        duration.observe(seconds);
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (requests, duration));
    }
}

impl<E: Endpoint> Middleware<E> for HttpMetrics {
    type Output = HttpMetricsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        HttpMetricsEndpoint {
            inner,
            metrics: self.clone(),
        }
    }
}

pub struct HttpMetricsEndpoint<E> {
    inner: E,
    metrics: HttpMetrics,
}

impl<E: Endpoint> Endpoint for HttpMetricsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let method = req.method().clone();
        let endpoint = self.metrics.routes.position(req.uri().path());
        let started = Instant::now();
        let result = self.inner.call(req).await;
        let seconds = started.elapsed().as_secs_f64();
        let (status, result) = match result {
            Ok(output) => {
                let response = output.into_response();
                (response.status(), Ok(response))
            }
            Err(err) => (err.status(), Err(err)),
        };
        self.metrics.observe(&method, endpoint, status, seconds);
        result
    }
}

/// `GET /metrics`: the application's registry in Prometheus' text format.
pub struct MetricsEndpoint {
    registry: Registry,
}

impl MetricsEndpoint {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }
}

impl Endpoint for MetricsEndpoint {
    type Output = Response;

    async fn call(&self, _req: Request) -> Result<Self::Output> {
        let encoder = TextEncoder::new();
        let mut body = Vec::with_capacity(8 * 1024);
        encoder
            .encode(&self.registry.gather(), &mut body)
            .map_err(|err| poem::Error::new(err, StatusCode::INTERNAL_SERVER_ERROR))?;
        Ok(Response::builder()
            .content_type(encoder.format_type())
            .body(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_templates_and_static_segments_win() {
        let routes = RouteTemplates::new([
            "/products",
            "/products/{id}",
            "/stock/{product_id}",
            "/stock/low",
            "/metrics",
        ]);
        assert_eq!(routes.label("/products"), "/products");
        assert_eq!(routes.label("/products/42"), "/products/:id");
        assert_eq!(routes.label("/products/abc"), "/products/:id");
        assert_eq!(routes.label("/stock/low"), "/stock/low");
        assert_eq!(routes.label("/stock/7"), "/stock/:product_id");
        assert_eq!(routes.label("/products/1/extra"), UNMATCHED_ENDPOINT);
        assert_eq!(routes.label("/"), UNMATCHED_ENDPOINT);
        assert_eq!(routes.label("/wp-admin.php"), UNMATCHED_ENDPOINT);
    }

    #[test]
    fn requests_are_counted_per_method_endpoint_and_status() {
        let registry = Registry::new();
        let metrics =
            HttpMetrics::register(&registry, RouteTemplates::new(["/products/{id}"])).unwrap();
        let routes = metrics.routes.clone();
        let seen = |method: Method, path: &str, status: StatusCode| {
            metrics.observe(&method, routes.position(path), status, 0.002);
        };
        seen(Method::GET, "/products/1", StatusCode::OK);
        seen(Method::GET, "/products/2", StatusCode::OK);
        seen(Method::GET, "/products/x", StatusCode::BAD_REQUEST);
        seen(
            Method::from_bytes(b"BREW").unwrap(),
            "/coffee",
            StatusCode::NOT_FOUND,
        );
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        for line in [
            r#"http_requests_total{endpoint="/products/:id",method="GET",status="200"} 2"#,
            r#"http_requests_total{endpoint="/products/:id",method="GET",status="400"} 1"#,
            r#"http_requests_total{endpoint="unmatched",method="other",status="404"} 1"#,
            r#"http_request_duration_seconds_count{endpoint="/products/:id",method="GET"} 3"#,
            r#"http_request_duration_seconds_bucket{endpoint="/products/:id",method="GET",le="0.0025"} 3"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
