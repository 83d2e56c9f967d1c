use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{assert_error, decode, sample, spawn_app, spawn_app_with, Options};

#[tokio::test]
async fn without_the_api_pages_answer_502_json_and_health_stays_ok() {
    let app = spawn_app_with(Options {
        api_down: true,
        ..Options::default()
    })
    .await;
    for path in ["/", "/products/1"] {
        let (status, body) = app.get_json(path).await;
        assert_error(status, &body, 502, "unavailable");
        assert!(
            !body["error"].as_str().unwrap().contains("127.0.0.1"),
            "no internals: {body}"
        );
    }
    let (status, body) = app
        .post_json("/cart/items", &json!({"product_id": 1, "quantity": 1}))
        .await;
    assert_error(status, &body, 502, "unavailable");
    // An empty cart needs nothing from the API.
    assert_eq!(app.page("/cart").await.status, 200);

    let (status, health) = app.get_json("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["service"], "frontend");
    let metrics = app.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "http_requests_total",
            &[("endpoint", "/"), ("method", "GET"), ("status", "502")]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "page_views_total", &[("page", "home")]),
        Some(0.0)
    );
}

#[tokio::test]
async fn an_api_failing_with_5xx_makes_pages_502_and_its_refusals_pass_through() {
    let app = spawn_app().await;
    let api = reqwest::Client::new();
    let response = api
        .post(format!("{}/admin/faults", app.backend().api_address))
        .header("authorization", shop_testkit::faults::fault_bearer())
        .json(&json!({"kind": "error_rate", "value": 1.0, "duration_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (status, body) = app.get_json("/").await;
    assert_error(status, &body, 502, "unavailable");
    let (status, body) = app.get_json("/products/2").await;
    assert_eq!(status, 502, "{body}");
    api.delete(format!("{}/admin/faults", app.backend().api_address))
        .header("authorization", shop_testkit::faults::fault_bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(app.page("/").await.status, 200);
    let (status, body) = app.get_json("/products/424242").await;
    assert_error(status, &body, 404, "no product");
}

#[tokio::test]
async fn the_labs_latency_spike_on_the_api_slows_pages_without_failing_them() {
    let app = spawn_app().await;
    let response = reqwest::Client::new()
        .post(format!("{}/admin/faults", app.backend().api_address))
        .header("authorization", shop_testkit::faults::fault_bearer())
        .json(&json!({"kind": "latency", "value": 1500, "duration_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let started = Instant::now();
    let page = app.page("/products/1").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test]
async fn an_api_slower_than_the_timeout_makes_pages_502() {
    let app = spawn_app_with(Options {
        api_timeout: 1,
        ..Options::default()
    })
    .await;
    let response = reqwest::Client::new()
        .post(format!("{}/admin/faults", app.backend().api_address))
        .header("authorization", shop_testkit::faults::fault_bearer())
        .json(&json!({"kind": "latency", "value": 2000, "duration_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let started = Instant::now();
    let (status, body) = app.get_json("/").await;
    assert_error(status, &body, 502, "unavailable");
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "the timeout bounds the wait"
    );
}

#[tokio::test]
async fn an_error_rate_fault_fails_pages_while_health_and_metrics_answer() {
    let app = spawn_app().await;
    let (status, fault) = app
        .post_json(
            "/admin/faults",
            &json!({"kind": "error_rate", "value": 1.0, "duration_seconds": 60}),
        )
        .await;
    assert_eq!(status, 201, "{fault}");
    for path in ["/", "/products/1", "/cart"] {
        let (status, body) = app.get_json(path).await;
        assert_error(status, &body, 500, "injected fault");
    }
    let (status, body) = app
        .post_json("/checkout", &json!({"payment_method": "card"}))
        .await;
    assert_error(status, &body, 500, "injected fault");
    for path in ["/healthz", "/admin/faults", "/openapi.json"] {
        let (status, _) = app.get_json(path).await;
        assert_eq!(status, 200, "{path} keeps answering");
    }
    let metrics = app.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "http_requests_total",
            &[("endpoint", "/products/:id"), ("status", "500")]
        ),
        Some(1.0),
        "{metrics}"
    );
    let (status, body) = app
        .post_json(
            "/admin/faults",
            &json!({"kind": "decline_rate", "value": 1.0, "duration_seconds": 60}),
        )
        .await;
    assert_error(status, &body, 400, "not supported");
    let (status, cleared) = decode(
        app.client
            .delete(app.url("/admin/faults"))
            .header("authorization", shop_testkit::faults::fault_bearer())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, cleared["cleared"].as_i64()), (200, Some(1)));
    assert_eq!(app.page("/").await.status, 200);
}

#[tokio::test]
async fn added_latency_slows_pages() {
    let app = spawn_app().await;
    let (status, _) = app
        .post_json(
            "/admin/faults",
            &json!({"kind": "latency", "value": 300, "duration_seconds": 30}),
        )
        .await;
    assert_eq!(status, 201);
    let started = Instant::now();
    assert_eq!(app.page("/").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}
