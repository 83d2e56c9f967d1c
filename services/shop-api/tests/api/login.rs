use serde_json::json;

use crate::helpers::{assert_client_error, spawn_app, spawn_app_with, Options};

#[tokio::test]
async fn a_customer_logs_in_and_gets_a_session_whose_token_is_stored_only_hashed() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json(
            "/login",
            &json!({"email": "alice@example.com", "password": "alertlab-demo"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "alice@example.com");
    let token = body["session_token"].as_str().unwrap();
    assert_eq!(token.len(), 64, "{token}");
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    let ttl = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((3500..=3600).contains(&ttl), "{ttl}");
    assert_eq!(app.count("SELECT count(*) AS n FROM login_attempts a JOIN customers c ON c.id = a.customer_id WHERE a.success AND c.email = 'alice@example.com'"), 1);
    // The database holds the token's SHA-256 and nothing from which to recover it.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM customer_sessions WHERE token_hash = sha256('{token}'::bytea)"
        )),
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM customer_sessions s WHERE position('{token}' IN s::text) > 0 \
             OR position(decode('{token}', 'hex') IN token_hash) > 0"
        )),
        0
    );
    // Two logins are two sessions.
    let again = app.login("alice@example.com").await;
    assert_ne!(again, format!("Bearer {token}"));
    assert_eq!(app.count("SELECT count(*) AS n FROM customer_sessions"), 2);
}

#[tokio::test]
async fn sessions_per_customer_are_bounded() {
    let app = spawn_app_with(Options {
        session_ttl: std::time::Duration::from_secs(60),
        ..Options::default()
    })
    .await;
    let mut tokens = Vec::new();
    for _ in 0..23 {
        tokens.push(app.login("carol@example.com").await);
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM customer_sessions"), 20);
    // The oldest ended, the newest work.
    let order = json!({"product_id": 1, "quantity": 1, "payment_method": "card"});
    let (status, body) = app
        .post_with("/orders", &order, &[("authorization", &tokens[0])])
        .await;
    assert_client_error(status, &body, 401, "log in again");
    let (status, body) = app
        .post_with("/orders", &order, &[("authorization", &tokens[22])])
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn wrong_passwords_and_unknown_emails_are_401_open_no_session_and_are_recorded() {
    let app = spawn_app().await;
    for (email, password) in [
        ("alice@example.com", "guess"),
        ("mallory@example.com", "alertlab-demo"),
    ] {
        let (status, body) = app
            .post_with(
                "/login",
                &json!({"email": email, "password": password}),
                &[("x-forwarded-for", "198.51.100.23")],
            )
            .await;
        assert_client_error(status, &body, 401, "invalid email or password");
        assert!(body.get("session_token").is_none(), "{body}");
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM customer_sessions"), 0);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM login_attempts WHERE NOT success AND host(ip_address) = '198.51.100.23'"),
        2
    );
    // The wrong password is counted against the account, the unknown email against none.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM login_attempts a JOIN customers c ON c.id = a.customer_id WHERE c.email = 'alice@example.com' AND NOT a.success"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM login_attempts WHERE customer_id IS NULL AND email = 'mallory@example.com'"),
        1
    );
}

/// The attack: 31 failed logins on one account, each with a different forged
/// leftmost `X-Forwarded-For`, through the one proxy the lab trusts. They are recorded under
/// the address the proxy saw, so the brute-force rule counts all 31 from it.
#[tokio::test]
async fn forged_forwarded_addresses_do_not_hide_a_brute_force() {
    let app = spawn_app().await;
    for n in 1..=31 {
        let forwarded = format!("10.66.0.{n}, 192.0.2.77");
        let (status, body) = app
            .post_with(
                "/login",
                &json!({"email": "dave@example.com", "password": format!("guess-{n}")}),
                &[("x-forwarded-for", forwarded.as_str())],
            )
            .await;
        assert_client_error(status, &body, 401, "invalid email or password");
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM login_attempts WHERE NOT success AND host(ip_address) = '192.0.2.77'"),
        31
    );
    assert_eq!(
        app.count("SELECT count(DISTINCT ip_address) AS n FROM login_attempts"),
        1
    );
}

#[tokio::test]
async fn without_trusted_proxies_the_forwarded_header_is_ignored() {
    let app = spawn_app_with(Options {
        trusted_proxies: 0,
        ..Options::default()
    })
    .await;
    app.post_with(
        "/login",
        &json!({"email": "bob@example.com", "password": "nope"}),
        &[("x-forwarded-for", "203.0.113.66")],
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) AS n FROM login_attempts WHERE host(ip_address) = '127.0.0.1'"),
        1
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
