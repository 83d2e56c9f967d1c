use std::time::{Duration, Instant};

use shop_frontend::{CONTENT_SECURITY_POLICY, MAX_SESSIONS};

use crate::helpers::{browser, spawn_app, spawn_app_with, Options};

fn session_id(set_cookie: &str) -> &str {
    set_cookie
        .strip_prefix("shop_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("not a session cookie: {set_cookie}"))
}

/// `POST /cart/items` with `client`; the response's `Set-Cookie`, if any.
async fn add_with(
    app: &crate::helpers::TestApp,
    client: &reqwest::Client,
    product_id: i32,
) -> Option<String> {
    let response = client
        .post(app.url("/cart/items"))
        .json(&serde_json::json!({"product_id": product_id, "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_session_is_created_when_the_cart_is_first_written_and_kept() {
    let app = spawn_app().await;
    let first = app.page("/cart").await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.set_cookie, None,
        "reading the cart creates no session"
    );
    assert!(first.text.contains("Your cart is empty"));
    assert_eq!(app.page("/").await.set_cookie, None);

    let cookie = add_with(&app, &app.client, 1)
        .await
        .expect("the first cart write sets the session cookie");
    assert_eq!(session_id(&cookie).len(), 32);
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert_eq!(
        add_with(&app, &app.client, 1).await,
        None,
        "the session is kept"
    );
    let again = app.page("/cart").await;
    assert_eq!(again.set_cookie, None);
    assert!(again.text.contains("Aurora Wireless Headphones"));

    // Another visitor has a session and a cart of their own.
    let other = browser();
    let theirs = app.page_with(&other, "/cart").await;
    assert!(theirs.text.contains("Your cart is empty"));
    let their_cookie = add_with(&app, &other, 2).await.expect("a new session");
    assert_ne!(session_id(&their_cookie), session_id(&cookie));
}

#[tokio::test]
async fn an_unknown_session_id_gets_a_new_session_on_the_first_cart_write() {
    let app = spawn_app().await;
    let stale = format!("shop_session={}", "ab".repeat(16));
    let page = reqwest::Client::new()
        .get(app.url("/"))
        .header("cookie", &stale)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("set-cookie").is_none());
    let added = reqwest::Client::new()
        .post(app.url("/cart/items"))
        .header("cookie", &stale)
        .json(&serde_json::json!({"product_id": 1, "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let cookie = added.headers()["set-cookie"].to_str().unwrap();
    assert_ne!(session_id(cookie), "ab".repeat(16));
}

#[tokio::test]
async fn an_idle_session_expires_after_the_timeout() {
    let app = spawn_app_with(Options {
        session_timeout: 1,
        ..Options::default()
    })
    .await;
    let cookie = add_with(&app, &app.client, 3).await.unwrap();
    let page = app.page("/cart").await;
    assert!(page.text.contains("Vertex Ergonomic Mouse"));
    assert_eq!(page.set_cookie, None);

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let page = app.page("/cart").await;
    assert!(page.text.contains("Your cart is empty"), "{}", page.text);
    let renewed = add_with(&app, &app.client, 3)
        .await
        .expect("the expired session is replaced");
    assert_ne!(session_id(&renewed), session_id(&cookie));
}

/// As many cookie-less requests as the store holds sessions: before, each made a session and a
/// full store evicted the least recently seen one, so this many wiped every cart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_cookie_less_requests_leaves_an_existing_cart_intact() {
    let app = spawn_app().await;
    app.add_to_cart(3, 2).await;
    let flood = reqwest::Client::new();
    let started = Instant::now();
    let url = app.url("/cart");
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (flood, url) = (flood.clone(), url.clone());
        tasks.spawn(async move {
            for _ in (worker..MAX_SESSIONS as usize).step_by(8) {
                let response = flood.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                assert!(response.headers().get("set-cookie").is_none());
                let _ = response.bytes().await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    eprintln!(
        "{MAX_SESSIONS} cookie-less requests in {:?}",
        started.elapsed()
    );
    let page = app.page("/cart").await;
    assert!(
        page.text.contains("Vertex Ergonomic Mouse"),
        "the cart was lost: {}",
        page.text
    );
}

#[tokio::test]
async fn a_full_store_refuses_a_new_cart_with_503_and_keeps_the_others() {
    let app = spawn_app_with(Options {
        max_sessions: 2,
        ..Options::default()
    })
    .await;
    let visitors = [browser(), browser()];
    for (n, visitor) in visitors.iter().enumerate() {
        add_with(&app, visitor, n as i32 + 1).await.unwrap();
    }
    let refused = browser()
        .post(app.url("/cart/items"))
        .json(&serde_json::json!({"product_id": 3, "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "60");
    assert!(refused.headers().get("set-cookie").is_none());
    let (status, body) = shop_testkit::http::decode(refused).await;
    shop_testkit::http::assert_error(status, &body, 503, "as many carts as it can");
    for (visitor, product) in visitors
        .iter()
        .zip(["Aurora Wireless Headphones", "Nimbus Mechanical Keyboard"])
    {
        let page = app.page_with(visitor, "/cart").await;
        assert!(page.text.contains(product), "{}", page.text);
    }
}

#[tokio::test]
async fn every_response_forbids_framing_sniffing_and_foreign_content() {
    let app = spawn_app().await;
    for path in ["/", "/products/1", "/cart", "/products/9999", "/healthz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            header("content-security-policy").as_deref(),
            Some(CONTENT_SECURITY_POLICY),
            "{path}"
        );
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(
            header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
    }
    assert!(CONTENT_SECURITY_POLICY.contains("default-src 'none'"));
    assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
}
