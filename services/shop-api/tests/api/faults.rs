use serde_json::json;

use crate::helpers::{assert_client_error, decode, spawn_app, spawn_app_with, Options};

#[tokio::test]
async fn the_fault_api_is_refused_when_fault_injection_is_disabled() {
    let app = spawn_app_with(Options {
        enable_faults: false,
        ..Options::default()
    })
    .await;
    let (status, body) = app.get("/admin/faults").await;
    assert_client_error(status, &body, 403, "disabled");
    let (status, body) = app
        .post_json(
            "/admin/faults",
            &json!({"kind": "error_rate", "value": 1.0, "duration_seconds": 60}),
        )
        .await;
    assert_client_error(status, &body, 403, "disabled");
    let (status, _) = app.get("/products/1").await;
    assert_eq!(status, 200);
}

/// The fault API from a real loopback client: being on the host proves nothing (a same-host
/// proxy or a browser tab under DNS rebinding is a loopback client too), so without the right
/// token it is 401, and with it a request naming another host or made by a web page is 403.
#[tokio::test]
async fn a_loopback_client_needs_the_token_and_a_local_host_name() {
    let app = spawn_app().await;
    let url = format!("{}/admin/faults", app.address);
    let fault = json!({"kind": "error_rate", "value": 1.0, "duration_seconds": 86400});
    let bearer = shop_testkit::faults::fault_bearer();
    let attempts = [
        (app.client.post(&url), 401, "Authorization: Bearer"),
        (
            app.client.post(&url).bearer_auth("wrong"),
            401,
            "Authorization: Bearer",
        ),
        (
            app.client
                .post(&url)
                .header("authorization", &bearer)
                .header("host", "rebind.attacker.example"),
            403,
            "addressed to this host",
        ),
        (
            app.client
                .post(&url)
                .header("authorization", &bearer)
                .header("origin", "http://rebind.attacker.example"),
            403,
            "web pages",
        ),
        (
            app.client
                .post(&url)
                .header("authorization", &bearer)
                .header("x-forwarded-for", "203.0.113.7"),
            403,
            "proxied",
        ),
    ];
    for (request, expected, mentions) in attempts {
        let (status, body) = decode(request.json(&fault).send().await.unwrap()).await;
        assert_client_error(status, &body, expected, mentions);
    }
    // Nothing was set: business routes answer.
    assert_eq!(app.get("/products/1").await.0, 200);
    let (status, listed) = app.get("/admin/faults").await;
    assert_eq!((status, listed["faults"].clone()), (200, json!([])));
}

#[tokio::test]
async fn an_error_rate_fault_fails_business_routes_only_until_cleared() {
    let app = spawn_app().await;
    let (status, fault) = app
        .post_json(
            "/admin/faults",
            &json!({"kind": "error_rate", "value": 1.0, "duration_seconds": 60}),
        )
        .await;
    assert_eq!(status, 201, "{fault}");
    assert_eq!(fault["kind"], "error_rate");
    assert!(fault["remaining_seconds"].as_f64().unwrap() > 55.0);
    let (status, body) = app.get("/products").await;
    assert_eq!(status, 500);
    assert!(body["error"].as_str().unwrap().contains("injected fault"));
    for path in ["/healthz", "/admin/faults", "/openapi.json"] {
        let (status, _) = app.get(path).await;
        assert_eq!(status, 200, "{path} keeps answering");
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            "http_requests_total{endpoint=\"/products\",method=\"GET\",status=\"500\"} 1"
        ),
        "{metrics}"
    );
    let (_, listed) = app.get("/admin/faults").await;
    assert_eq!(listed["faults"].as_array().unwrap().len(), 1);
    let response = app
        .client
        .delete(format!("{}/admin/faults", app.address))
        .header("authorization", shop_testkit::faults::fault_bearer())
        .send()
        .await
        .unwrap();
    let (status, cleared) = crate::helpers::decode(response).await;
    assert_eq!((status, cleared["cleared"].as_i64()), (200, Some(1)));
    let (status, _) = app.get("/products").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_fault_reverts_by_itself_when_its_duration_ends() {
    let app = spawn_app().await;
    app.post_json(
        "/admin/faults",
        &json!({"kind": "error_rate", "value": 1.0, "duration_seconds": 1}),
    )
    .await;
    assert_eq!(app.get("/products/1").await.0, 500);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(app.get("/products/1").await.0, 200);
}

#[tokio::test]
async fn added_latency_slows_business_routes() {
    let app = spawn_app().await;
    app.post_json(
        "/admin/faults",
        &json!({"kind": "latency", "value": 400, "duration_seconds": 30}),
    )
    .await;
    let started = std::time::Instant::now();
    assert_eq!(app.get("/products/1").await.0, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
}

#[tokio::test]
async fn invalid_faults_are_refused_with_the_reason() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"kind": "decline_rate", "value": 1.0, "duration_seconds": 60}),
            "not supported by this service",
        ),
        (
            json!({"kind": "error_rate", "value": 2.0, "duration_seconds": 60}),
            "between 0 and 1",
        ),
        (
            json!({"kind": "error_rate", "value": 0.5, "duration_seconds": 0}),
            "duration_seconds",
        ),
        (
            json!({"kind": "meltdown", "value": 1.0, "duration_seconds": 60}),
            "kind",
        ),
        (
            json!({"kind": "error_rate", "value": 0.5}),
            "duration_seconds",
        ),
    ];
    for (body, mentions) in cases {
        let (status, response) = app.post_json("/admin/faults", &body).await;
        assert_client_error(status, &response, 400, mentions);
    }
    let (_, listed) = app.get("/admin/faults").await;
    assert!(listed["faults"].as_array().unwrap().is_empty());
}
