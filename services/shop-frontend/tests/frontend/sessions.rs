use std::time::Duration;

use crate::helpers::{browser, spawn_app, spawn_app_with, Options};

fn session_id(set_cookie: &str) -> &str {
    set_cookie
        .strip_prefix("shop_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("not a session cookie: {set_cookie}"))
}

#[tokio::test]
async fn a_new_visitor_gets_a_session_cookie_and_an_empty_cart() {
    let app = spawn_app().await;
    let first = app.page("/cart").await;
    assert_eq!(first.status, 200);
    let cookie = first.set_cookie.expect("a new session sets its cookie");
    assert_eq!(session_id(&cookie).len(), 32);
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(first.text.contains("Your cart is empty"));
    app.add_to_cart(1, 2).await;
    let again = app.page("/cart").await;
    assert_eq!(again.set_cookie, None, "the session is kept");
    assert!(again.text.contains("Aurora Wireless Headphones"));

    // Another visitor has a session and a cart of their own.
    let other = browser();
    let theirs = app.page_with(&other, "/cart").await;
    let their_cookie = theirs.set_cookie.expect("a new session");
    assert_ne!(session_id(&their_cookie), session_id(&cookie));
    assert!(theirs.text.contains("Your cart is empty"));
}

#[tokio::test]
async fn an_unknown_session_id_gets_a_new_session() {
    let app = spawn_app().await;
    let response = reqwest::Client::new()
        .get(app.url("/"))
        .header("cookie", format!("shop_session={}", "ab".repeat(16)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert_ne!(session_id(cookie), "ab".repeat(16));
}

#[tokio::test]
async fn an_idle_session_expires_after_the_timeout() {
    let app = spawn_app_with(Options {
        session_timeout: 1,
        ..Options::default()
    })
    .await;
    let first = app.page("/").await;
    let cookie = first.set_cookie.unwrap();
    app.add_to_cart(3, 1).await;
    let page = app.page("/cart").await;
    assert!(page.text.contains("Vertex Ergonomic Mouse"));
    assert_eq!(page.set_cookie, None);

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let page = app.page("/cart").await;
    let renewed = page.set_cookie.expect("the expired session is replaced");
    assert_ne!(session_id(&renewed), session_id(&cookie));
    assert!(page.text.contains("Your cart is empty"), "{}", page.text);
}
