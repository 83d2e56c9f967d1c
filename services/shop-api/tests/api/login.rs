use serde_json::json;

use crate::helpers::{assert_client_error, spawn_app};

#[tokio::test]
async fn a_customer_logs_in_with_the_right_password() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json(
            "/login",
            &json!({"email": "alice@example.com", "password": "alertlab-demo"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(app.count("SELECT count(*) AS n FROM login_attempts WHERE success AND email = 'alice@example.com'"), 1);
}

#[tokio::test]
async fn wrong_passwords_and_unknown_emails_are_401_and_recorded_with_the_client_ip() {
    let app = spawn_app().await;
    for (email, password) in [
        ("alice@example.com", "guess"),
        ("mallory@example.com", "alertlab-demo"),
    ] {
        let response = app
            .client
            .post(format!("{}/login", app.address))
            .header("x-forwarded-for", "203.0.113.66, 10.0.0.1")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        let (status, body) = crate::helpers::decode(response).await;
        assert_client_error(status, &body, 401, "invalid email or password");
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM login_attempts WHERE NOT success AND host(ip_address) = '203.0.113.66'"),
        2
    );
}

#[tokio::test]
async fn without_a_forwarded_header_the_peer_address_is_recorded() {
    let app = spawn_app().await;
    app.post_json(
        "/login",
        &json!({"email": "bob@example.com", "password": "nope"}),
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) AS n FROM login_attempts WHERE host(ip_address) = '127.0.0.1'"),
        1
    );
}

#[tokio::test]
async fn malformed_logins_are_400s_and_not_recorded() {
    let app = spawn_app().await;
    for body in [
        json!({"email": "alice@example.com"}),
        json!({"email": 5, "password": "x"}),
        json!({"email": "", "password": "x"}),
    ] {
        let (status, response) = app.post_json("/login", &body).await;
        assert_eq!(status, 400, "{response}");
        assert!(response["error"].is_string());
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM login_attempts"), 0);
}
