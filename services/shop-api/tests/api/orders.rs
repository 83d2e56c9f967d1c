use serde_json::json;

use crate::helpers::{assert_client_error, spawn_app, spawn_app_with, Options, NO_LIMITS};

#[tokio::test]
async fn a_logged_in_customers_order_is_paid_completed_and_theirs_alone() {
    let app = spawn_app().await;
    let alice = app.login("alice@example.com").await;
    let before = app.stock(2);
    let (status, order) = app
        .post_with(
            "/orders",
            &json!({"product_id": 2, "quantity": 3, "payment_method": "paypal"}),
            &[("authorization", &alice)],
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "completed");
    assert_eq!(order["quantity"], 3);
    assert_eq!(order["total_amount"], "358.50");
    assert_eq!(
        order["customer_id"].as_i64(),
        Some(app.count("SELECT id::bigint AS n FROM customers WHERE email = 'alice@example.com'"))
    );
    assert!(
        order.get("payment_reference").is_none(),
        "the payment's transaction id stays inside the shop: {order}"
    );
    assert_eq!(app.stock(2), before - 3);
    // The id is the order's random public id, not its serial.
    let id = order["id"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(id).unwrap();
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(
        app.count(&format!("SELECT count(*) AS n FROM orders WHERE public_id = '{id}' AND payment_reference LIKE 'txn_%'")),
        1
    );

    let (status, fetched) = app
        .get_with(&format!("/orders/{id}"), &[("authorization", &alice)])
        .await;
    assert_eq!(status, 200, "{fetched}");
    assert_eq!(fetched["status"], "completed");
    assert!(fetched.get("payment_reference").is_none(), "{fetched}");

    // Nobody else sees it, and the answer does not say that it exists.
    let bob = app.login("bob@example.com").await;
    for headers in [vec![], vec![("authorization", bob.as_str())]] {
        let (status, body) = app.get_with(&format!("/orders/{id}"), &headers).await;
        assert_client_error(status, &body, 404, &format!("no order with id {id}"));
    }
    let (status, body) = app.get(&format!("/orders/{}", uuid::Uuid::new_v4())).await;
    assert_client_error(status, &body, 404, "no order");
    // The serial is no id at all.
    let serial = app.count("SELECT max(id) AS n FROM orders");
    let (status, body) = app.get(&format!("/orders/{serial}")).await;
    assert_client_error(status, &body, 400, "id");
}

#[tokio::test]
async fn an_anonymous_order_is_readable_by_whoever_holds_its_id() {
    let app = spawn_app().await;
    let (status, order) = app
        .post_json(
            "/orders",
            &json!({"product_id": 3, "quantity": 1, "payment_method": "card"}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert!(order["customer_id"].is_null(), "{order}");
    assert!(order.get("payment_reference").is_none(), "{order}");
    let id = order["id"].as_str().unwrap();
    let bob = app.login("bob@example.com").await;
    for headers in [vec![], vec![("authorization", bob.as_str())]] {
        let (status, fetched) = app.get_with(&format!("/orders/{id}"), &headers).await;
        assert_eq!(
            (status, fetched["id"].as_str()),
            (200, Some(id)),
            "{fetched}"
        );
    }
}

#[tokio::test]
async fn orders_cannot_be_attributed_by_email_and_do_not_reveal_accounts() {
    let app = spawn_app().await;
    // A real and an unknown email get the same answer, and neither places an order.
    let mut answers = Vec::new();
    for email in ["alice@example.com", "nobody@example.com"] {
        let (status, body) = app
            .post_json(
                "/orders",
                &json!({"product_id": 1, "quantity": 1, "payment_method": "card", "customer_email": email}),
            )
            .await;
        assert_client_error(status, &body, 400, "customer_email");
        answers.push((status, body));
    }
    assert_eq!(answers[0], answers[1], "no account probing");
    assert_eq!(app.count("SELECT count(*) AS n FROM orders"), 0);
}

#[tokio::test]
async fn an_invalid_or_expired_session_is_401_and_orders_nothing() {
    let app = spawn_app().await;
    let alice = app.login("alice@example.com").await;
    app.execute("UPDATE customer_sessions SET expires_at = now() - interval '1 second'");
    let order = json!({"product_id": 1, "quantity": 1, "payment_method": "card"});
    for authorization in [
        alice.as_str(),
        "Bearer 00000000000000000000000000000000000000000000000000000000000000ff",
        "Bearer not-a-session",
        "Basic YWxpY2U6YWxlcnRsYWItZGVtbw==",
    ] {
        let (status, body) = app
            .post_with("/orders", &order, &[("authorization", authorization)])
            .await;
        assert_client_error(status, &body, 401, "log in again");
        let (status, body) = app
            .get_with(
                &format!("/orders/{}", uuid::Uuid::new_v4()),
                &[("authorization", authorization)],
            )
            .await;
        assert_client_error(status, &body, 401, "log in again");
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM orders"), 0);
}

#[tokio::test]
async fn two_hundred_concurrent_orders_for_fifty_units_complete_exactly_fifty() {
    let app = spawn_app_with(Options {
        order_limits: NO_LIMITS,
        ..Options::default()
    })
    .await;
    app.execute("UPDATE products SET stock_level = 50 WHERE id = 5");
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let client = app.client.clone();
        let url = format!("{}/orders", app.address);
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"product_id": 5, "quantity": 1, "payment_method": "card"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut created = 0;
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            201 => created += 1,
            409 => conflicts += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, conflicts), (50, 150));
    assert_eq!(app.stock(5), 0);
    assert_eq!(
        app.count("SELECT coalesce(sum(quantity), 0)::bigint AS n FROM orders WHERE product_id = 5 AND order_status = 'completed'"),
        50
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE order_status <> 'completed'"),
        0
    );
}

#[tokio::test]
async fn a_declined_payment_fails_the_order_and_takes_no_stock() {
    let app = spawn_app_with(Options {
        decline_rate: 1.0,
        ..Options::default()
    })
    .await;
    let before = app.stock(1);
    let (status, body) = app
        .post_json(
            "/orders",
            &json!({"product_id": 1, "quantity": 2, "payment_method": "card"}),
        )
        .await;
    assert_eq!(status, 402, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("payment declined"));
    assert_eq!(body["order"]["status"], "failed");
    assert!(body["order"]["failure_reason"].is_string());
    assert_eq!(app.stock(1), before);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE order_status = 'completed'"),
        0
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE order_status = 'failed'"),
        1
    );
}

#[tokio::test]
async fn a_processor_outage_for_one_method_fails_only_that_method() {
    let app = spawn_app().await;
    let payment = app.payment.unwrap();
    let (status, _) = crate::helpers::decode(
        app.client
            .post(format!("http://{payment}/admin/faults"))
            .header("authorization", shop_testkit::faults::fault_bearer())
            .json(&json!({"kind": "decline_rate", "value": 1.0, "method": "card", "duration_seconds": 60}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let (card, body) = app
        .post_json(
            "/orders",
            &json!({"product_id": 1, "quantity": 1, "payment_method": "card"}),
        )
        .await;
    assert_eq!(card, 402);
    assert_eq!(body["order"]["failure_reason"], "processor_unavailable");
    let (paypal, _) = app
        .post_json(
            "/orders",
            &json!({"product_id": 1, "quantity": 1, "payment_method": "paypal"}),
        )
        .await;
    assert_eq!(paypal, 201);
}

#[tokio::test]
async fn an_unreachable_payment_service_fails_the_order_cleanly() {
    let app = spawn_app_with(Options {
        payment_down: true,
        ..Options::default()
    })
    .await;
    let before = app.stock(4);
    let (status, body) = app
        .post_json(
            "/orders",
            &json!({"product_id": 4, "quantity": 1, "payment_method": "card"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("payment service is unavailable"));
    assert_eq!(app.stock(4), before);
    assert_eq!(app.count("SELECT count(*) AS n FROM orders WHERE order_status = 'failed' AND failure_reason = 'payment_unavailable'"), 1);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE order_status <> 'failed'"),
        0
    );
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_orders_get_a_4xx_saying_what_was_wrong_and_write_nothing() {
    let app = spawn_app().await;
    let stock_before = app.count("SELECT sum(stock_level)::bigint AS n FROM products");
    let cases = [
        (
            json!({"product_id": 1, "quantity": 0, "payment_method": "card"}),
            400,
            "quantity",
        ),
        (
            json!({"product_id": 1, "quantity": -3, "payment_method": "card"}),
            400,
            "quantity",
        ),
        (
            json!({"product_id": 1, "quantity": 101, "payment_method": "card"}),
            400,
            "quantity",
        ),
        (
            json!({"product_id": 1, "quantity": "two", "payment_method": "card"}),
            400,
            "quantity",
        ),
        (
            json!({"product_id": "one", "quantity": 1, "payment_method": "card"}),
            400,
            "product_id",
        ),
        (
            json!({"quantity": 1, "payment_method": "card"}),
            400,
            "product_id",
        ),
        (
            json!({"product_id": 1, "quantity": 1, "payment_method": "cash"}),
            400,
            "payment_method",
        ),
        (
            json!({"product_id": 1, "quantity": 1}),
            400,
            "payment_method",
        ),
        (
            json!({"product_id": 9999, "quantity": 1, "payment_method": "card"}),
            404,
            "no product",
        ),
        (
            json!({"product_id": 1, "quantity": 100000, "payment_method": "card"}),
            400,
            "quantity",
        ),
        (json!([1, 2, 3]), 400, "must be a JSON object"),
    ];
    for (body, expected_status, mentions) in cases {
        let (status, response) = app.post_json("/orders", &body).await;
        assert_client_error(status, &response, expected_status, mentions);
    }
    let (status, body) = app
        .post_raw("/orders", "application/json", "{\"product_id\": 1,")
        .await;
    assert_client_error(status, &body, 400, "not valid JSON");
    let (status, body) = app.post_raw("/orders", "text/plain", "product_id=1").await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(body["error"].is_string());
    let huge = format!(
        "{{\"product_id\": 1, \"quantity\": 1, \"payment_method\": \"card\", \"pad\": \"{}\"}}",
        "x".repeat(200_000)
    );
    let (status, body) = app
        .post_raw("/orders", "application/json", huge.clone())
        .await;
    assert_client_error(status, &body, 413, "larger than the limit");
    // Without a Content-Length (chunked), the limit still holds.
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(huge)];
    let stream = reqwest::Body::wrap_stream(futures_stream(chunks));
    let (status, body) = app.post_raw("/orders", "application/json", stream).await;
    assert_client_error(status, &body, 413, "larger than the limit");

    let (status, body) = app
        .post_json(
            "/orders",
            &json!({"product_id": 4, "quantity": 100, "payment_method": "card"}),
        )
        .await;
    assert_client_error(status, &body, 409, "insufficient stock");

    assert_eq!(app.count("SELECT count(*) AS n FROM orders"), 0);
    assert_eq!(
        app.count("SELECT sum(stock_level)::bigint AS n FROM products"),
        stock_before
    );
}

fn futures_stream(
    chunks: Vec<Result<String, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<String, std::io::Error>> + Send + Sync + 'static {
    ChunkStream(chunks.into_iter())
}

struct ChunkStream(std::vec::IntoIter<Result<String, std::io::Error>>);

impl futures_core::Stream for ChunkStream {
    type Item = Result<String, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}
