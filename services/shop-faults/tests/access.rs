//! Who may use the fault API: every request needs the token, and requests only a browser or
//! a proxy makes, or addressed to another host, are refused even with it. `TestClient`
//! requests have no peer address; the services' HTTP tests repeat the token checks from a
//! real loopback client.

use std::path::PathBuf;

use poem::{http::StatusCode, test::TestClient};
use poem_openapi::OpenApiService;
use shop_faults::{FaultAccess, FaultKind, Faults, FaultsApi};
use shop_telemetry::CommonArgs;

const TOKEN: &str = "s3cret";

fn client(access: FaultAccess) -> TestClient<poem::Route> {
    let faults = Faults::new(&[FaultKind::ErrorRate], access);
    let service = OpenApiService::new(FaultsApi::new(faults), "faults", "1");
    TestClient::new(poem::Route::new().nest("/", service))
}

fn enabled() -> FaultAccess {
    FaultAccess {
        enabled: true,
        token: Some(TOKEN.into()),
        allowed_hosts: vec!["shop".into(), "192.168.1.2".into()],
    }
}

async fn status(cli: &TestClient<poem::Route>, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = cli.get("/admin/faults");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await;
    let status = response.0.status();
    (status, response.0.into_body().into_string().await.unwrap())
}

const BEARER: (&str, &str) = ("authorization", "Bearer s3cret");

#[tokio::test]
async fn every_request_needs_the_right_bearer_token() {
    let cli = client(enabled());
    let host = ("host", "localhost:8080");
    for headers in [
        vec![host],
        vec![host, ("authorization", "Bearer wrong")],
        vec![host, ("authorization", "s3cret")],
    ] {
        let (status, body) = status(&cli, &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert!(body.contains("Authorization: Bearer <token>"), "{body}");
    }
    assert_eq!(status(&cli, &[host, BEARER]).await.0, StatusCode::OK);
    cli.post("/admin/faults")
        .header("host", "127.0.0.1:8080")
        .header("authorization", "Bearer s3cret")
        .body_json(&serde_json::json!({"kind": "error_rate", "value": 0.5, "duration_seconds": 5}))
        .send()
        .await
        .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn only_this_hosts_names_are_answered_so_dns_rebinding_fails() {
    let cli = client(enabled());
    for host in [
        "localhost",
        "localhost:8083",
        "127.0.0.1:8080",
        "[::1]:8080",
        "shop:8082",
        "SHOP.",
        "192.168.1.2:8080",
    ] {
        assert_eq!(
            status(&cli, &[("host", host), BEARER]).await.0,
            StatusCode::OK,
            "{host}"
        );
    }
    for host in [
        "rebind.attacker.example:8080",
        "localhost.attacker.example",
        "10.0.2.15:8080",
        "shop.evil:8082",
    ] {
        let (status, body) = status(&cli, &[("host", host), BEARER]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{host}");
        assert!(body.contains("addressed to this host"), "{body}");
    }
    // No Host at all (HTTP/1.0).
    let (status, body) = status(&cli, &[BEARER]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("needs a `Host` header"), "{body}");
}

#[tokio::test]
async fn requests_from_web_pages_or_through_proxies_are_refused_even_with_the_token() {
    let cli = client(enabled());
    let host = ("host", "localhost:8080");
    for (header, value, says) in [
        (
            "origin",
            "http://localhost:3000",
            "web pages (`origin` header)",
        ),
        ("origin", "null", "web pages"),
        (
            "sec-fetch-site",
            "same-origin",
            "web pages (`sec-fetch-site` header)",
        ),
        (
            "x-forwarded-for",
            "203.0.113.9",
            "proxied requests (`x-forwarded-for` header)",
        ),
        (
            "forwarded",
            "for=203.0.113.9",
            "proxied requests (`forwarded` header)",
        ),
        ("via", "1.1 proxy", "proxied requests"),
    ] {
        let (status, body) = status(&cli, &[host, BEARER, (header, value)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{header}");
        assert!(body.contains(says), "{header}: {body}");
    }
}

#[tokio::test]
async fn a_token_does_not_open_a_disabled_api() {
    let cli = client(FaultAccess {
        enabled: false,
        ..enabled()
    });
    let (status, body) = status(&cli, &[("host", "localhost"), BEARER]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("disabled"), "{body}");
}

#[tokio::test]
async fn enabled_without_a_token_refuses_everything() {
    let cli = client(FaultAccess {
        token: None,
        ..enabled()
    });
    let (status, body) = status(&cli, &[("host", "localhost"), BEARER]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("no token configured"), "{body}");
}

#[test]
fn enabling_faults_without_a_token_file_is_a_settings_error() {
    let common = CommonArgs {
        enable_faults: true,
        ..CommonArgs::default()
    };
    assert_eq!(
        FaultAccess::from_settings(&common).unwrap_err(),
        "--enable-faults needs --fault-token-file: the fault API always requires its bearer token"
    );
    let dir = tempfile::tempdir().unwrap();
    let token_file: PathBuf = dir.path().join("token");
    std::fs::write(&token_file, "t0ken\n").unwrap();
    let common = CommonArgs {
        enable_faults: true,
        fault_token_file: Some(token_file),
        admin_allowed_hosts: vec!["Shop.Example:8082".into(), "".into()],
        ..CommonArgs::default()
    };
    let access = FaultAccess::from_settings(&common).unwrap();
    assert_eq!(access.token.as_deref(), Some("t0ken"));
    assert_eq!(access.allowed_hosts, ["shop.example"]);
    let bad = CommonArgs {
        admin_allowed_hosts: vec!["http://shop/".into()],
        ..common
    };
    assert!(FaultAccess::from_settings(&bad)
        .unwrap_err()
        .contains("`http://shop/` is not a host name"));
}
