//! Who may use the fault API. `TestClient` requests have no socket address, so they stand in
//! for a non-loopback client; loopback clients are covered by the services' HTTP tests.

use poem::{http::StatusCode, test::TestClient};
use poem_openapi::OpenApiService;
use shop_faults::{FaultAccess, FaultKind, Faults, FaultsApi};

fn client(access: FaultAccess) -> TestClient<poem::Route> {
    let faults = Faults::new(&[FaultKind::ErrorRate], access);
    let service = OpenApiService::new(FaultsApi::new(faults), "faults", "1");
    TestClient::new(poem::Route::new().nest("/", service))
}

#[tokio::test]
async fn remote_clients_are_refused_without_a_configured_token() {
    let cli = client(FaultAccess {
        enabled: true,
        token: None,
    });
    let resp = cli.get("/admin/faults").send().await;
    resp.assert_status(StatusCode::FORBIDDEN);
    resp.assert_text(
        r#"{"error":"the fault API answers only loopback clients unless a token is configured"}"#,
    )
    .await;
}

#[tokio::test]
async fn remote_clients_need_the_right_bearer_token() {
    let cli = client(FaultAccess {
        enabled: true,
        token: Some("s3cret".into()),
    });
    cli.get("/admin/faults")
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    cli.get("/admin/faults")
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    cli.get("/admin/faults")
        .header("authorization", "Bearer s3cret")
        .send()
        .await
        .assert_status_is_ok();
    cli.post("/admin/faults")
        .header("authorization", "Bearer s3cret")
        .body_json(&serde_json::json!({"kind": "error_rate", "value": 0.5, "duration_seconds": 5}))
        .send()
        .await
        .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn a_token_does_not_open_a_disabled_api() {
    let cli = client(FaultAccess {
        enabled: false,
        token: Some("s3cret".into()),
    });
    cli.get("/admin/faults")
        .header("authorization", "Bearer s3cret")
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);
}
