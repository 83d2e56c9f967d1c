use serde_json::json;

use crate::helpers::{sample, spawn_app};

#[tokio::test]
async fn page_views_are_counted_per_page_and_exist_from_the_start() {
    let app = spawn_app().await;
    let metrics = app.metrics().await;
    for page in ["home", "product", "cart", "checkout"] {
        assert_eq!(
            sample(&metrics, "page_views_total", &[("page", page)]),
            Some(0.0),
            "{page} exists before any view: {metrics}"
        );
    }

    app.page("/").await;
    app.page("/").await;
    app.page("/products/1").await;
    app.page("/products/2").await;
    // Not a successful render: not a page view.
    app.page("/products/99999").await;
    app.page("/cart").await;
    app.add_to_cart(1, 1).await;
    let (status, _) = app
        .post_json("/checkout", &json!({"payment_method": "card"}))
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post_json("/checkout", &json!({"payment_method": "card"}))
        .await;
    assert_eq!(status, 400, "an empty cart is not a checkout");

    let metrics = app.metrics().await;
    for (page, views) in [
        ("home", 2.0),
        ("product", 2.0),
        ("cart", 1.0),
        ("checkout", 1.0),
    ] {
        assert_eq!(
            sample(&metrics, "page_views_total", &[("page", page)]),
            Some(views),
            "{page}: {metrics}"
        );
    }
}

#[tokio::test]
async fn requests_are_counted_by_route_template() {
    let app = spawn_app().await;
    app.page("/products/1").await;
    app.page("/products/2").await;
    app.page("/products/99999").await;
    app.page("/").await;
    app.page("/definitely/not/a/page").await;
    let metrics = app.metrics().await;
    let requests = |labels: &[(&str, &str)]| sample(&metrics, "http_requests_total", labels);
    assert_eq!(
        requests(&[
            ("method", "GET"),
            ("endpoint", "/products/:id"),
            ("status", "200")
        ]),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        requests(&[("endpoint", "/products/:id"), ("status", "404")]),
        Some(1.0)
    );
    assert_eq!(requests(&[("endpoint", "/"), ("status", "200")]), Some(1.0));
    assert_eq!(
        requests(&[("endpoint", "unmatched"), ("status", "404")]),
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
}
