use serde_json::json;

use shop_testkit::http::sample;

use crate::helpers::spawn_app;

#[tokio::test]
async fn requests_are_counted_by_route_template_method_and_status() {
    let app = spawn_app().await;
    app.get("/products/1").await;
    app.get("/products/2").await;
    app.get("/products/99999").await;
    app.get("/definitely/not/a/route").await;
    let metrics = app.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "http_requests_total",
            &[
                ("method", "GET"),
                ("endpoint", "/products/:id"),
                ("status", "200")
            ]
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "http_requests_total",
            &[("endpoint", "/products/:id"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "http_requests_total",
            &[("endpoint", "unmatched"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert!(
        !metrics.contains("/products/1\""),
        "raw paths must not become labels"
    );
    assert_eq!(
        sample(
            &metrics,
            "http_request_duration_seconds_count",
            &[("method", "GET"), ("endpoint", "/products/:id")]
        ),
        Some(3.0)
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket{endpoint=\"/products/:id\",method=\"GET\",le=\"0.25\"}"));
}

#[tokio::test]
async fn orders_are_counted_by_outcome() {
    let app = spawn_app().await;
    let metrics = app.metrics().await;
    for status in ["completed", "failed", "rejected"] {
        assert_eq!(
            sample(&metrics, "orders_total", &[("status", status)]),
            Some(0.0),
            "exists before any order"
        );
    }
    app.post_json(
        "/orders",
        &json!({"product_id": 1, "quantity": 1, "payment_method": "card"}),
    )
    .await;
    app.post_json(
        "/orders",
        &json!({"product_id": 4, "quantity": 100, "payment_method": "card"}),
    )
    .await;
    let metrics = app.metrics().await;
    assert_eq!(
        sample(&metrics, "orders_total", &[("status", "completed")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "orders_total", &[("status", "rejected")]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "http_requests_total",
            &[
                ("method", "POST"),
                ("endpoint", "/orders"),
                ("status", "201")
            ]
        ),
        Some(1.0)
    );
}
