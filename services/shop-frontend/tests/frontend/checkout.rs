use serde_json::json;

use crate::helpers::{assert_error, decode, spawn_app, spawn_app_with, Options};

#[tokio::test]
async fn a_checkout_orders_the_cart_takes_the_stock_and_empties_the_cart() {
    let app = spawn_app().await;
    let cart = app.add_to_cart(1, 2).await;
    assert_eq!(cart, json!({"items": [{"product_id": 1, "quantity": 2}]}));
    let cart = app.add_to_cart(3, 1).await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 2);

    let alice = app.login("alice@example.com").await;
    let (status, body) = app
        .post_json_as("/checkout", &json!({"payment_method": "card"}), &alice)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "completed");
    let orders = body["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["product_id"], 1);
    assert_eq!(orders[0]["status"], "completed");
    assert_eq!(orders[0]["order"]["status"], "completed");
    assert_eq!(orders[0]["order"]["quantity"], 2);
    assert_eq!(orders[0]["order"]["total_amount"], "298.00");
    assert_eq!(orders[1]["order"]["payment_method"], "card");
    assert!(body.get("error").is_none(), "{body}");

    assert_eq!(app.orders("completed"), 2);
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM orders o JOIN customers c ON c.id = o.customer_id \
             WHERE c.email = 'alice@example.com' AND o.product_id = 1 AND o.quantity = 2"
        ),
        1
    );
    assert_eq!(app.stock(1), 178);
    assert_eq!(app.stock(3), 259);
    let page = app.page("/cart").await;
    assert!(page.text.contains("Your cart is empty"), "{}", page.text);
}

#[tokio::test]
async fn an_empty_cart_cannot_be_checked_out() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json("/checkout", &json!({"payment_method": "card"}))
        .await;
    assert_error(status, &body, 400, "cart is empty");
    assert_eq!(app.count("SELECT count(*) AS n FROM orders"), 0);
}

#[tokio::test]
async fn bad_requests_are_json_400s_naming_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let cases = [
        (json!({"product_id": 1, "quantity": 0}), "quantity"),
        (json!({"product_id": 1, "quantity": 101}), "quantity"),
        (json!({"product_id": 1, "quantity": -3}), "quantity"),
        (json!({"product_id": "one", "quantity": 1}), "product_id"),
        (json!({"quantity": 1}), "product_id"),
        (json!([1, 2]), "object"),
    ];
    for (body, mentions) in cases {
        let (status, response) = app.post_json("/cart/items", &body).await;
        assert_error(status, &response, 400, mentions);
    }
    let (status, response) = app
        .post_raw("/cart/items", "application/json", "{\"product_id\": 1,")
        .await;
    assert_error(status, &response, 400, "not valid JSON");
    let page = app.page("/cart").await;
    assert!(page.text.contains("Your cart is empty"), "{}", page.text);

    app.add_to_cart(2, 1).await;
    let cases = [
        (json!({"payment_method": "cash"}), "payment_method"),
        (json!({}), "payment_method"),
        (
            json!({"payment_method": "card", "customer_email": "alice@example.com"}),
            "customer_email",
        ),
        (json!({"payment_method": 7}), "payment_method"),
    ];
    for (body, mentions) in cases {
        let (status, response) = app.post_json("/checkout", &body).await;
        assert_error(status, &response, 400, mentions);
    }
    let (status, response) = app
        .post_raw("/checkout", "application/json", "{\"payment_method\"")
        .await;
    assert_error(status, &response, 400, "not valid JSON");
    assert_eq!(app.count("SELECT count(*) AS n FROM orders"), 0);
    assert_eq!(app.stock(2), 140);
    let page = app.page("/cart").await;
    assert!(
        page.text.contains("Nimbus Mechanical Keyboard"),
        "the cart is kept: {}",
        page.text
    );
}

#[tokio::test]
async fn an_unknown_product_cannot_be_added() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json("/cart/items", &json!({"product_id": 99999, "quantity": 1}))
        .await;
    assert_error(status, &body, 404, "no product with id 99999");
    let page = app.page("/cart").await;
    assert!(page.text.contains("Your cart is empty"));
}

#[tokio::test]
async fn a_cart_line_holds_at_most_100_units() {
    let app = spawn_app().await;
    app.add_to_cart(1, 60).await;
    let (status, body) = app
        .post_json("/cart/items", &json!({"product_id": 1, "quantity": 41}))
        .await;
    assert_error(status, &body, 409, "at most 100 units");
    let cart = app.add_to_cart(1, 40).await;
    assert_eq!(cart, json!({"items": [{"product_id": 1, "quantity": 100}]}));
}

#[tokio::test]
async fn delete_empties_the_cart() {
    let app = spawn_app().await;
    app.add_to_cart(1, 1).await;
    let (status, body) = app.delete("/cart").await;
    assert_eq!((status, body), (200, json!({"items": []})));
    let (status, body) = app
        .post_json("/checkout", &json!({"payment_method": "paypal"}))
        .await;
    assert_error(status, &body, 400, "cart is empty");
}

#[tokio::test]
async fn a_declined_payment_is_402_orders_nothing_and_keeps_the_cart() {
    let app = spawn_app_with(Options {
        decline_rate: 1.0,
        ..Options::default()
    })
    .await;
    app.add_to_cart(5, 3).await;
    let (status, body) = app
        .post_json("/checkout", &json!({"payment_method": "gift_card"}))
        .await;
    assert_error(status, &body, 402, "declined");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["orders"][0]["status"], "declined");
    assert_eq!(body["orders"][0]["order"]["status"], "failed");
    assert_eq!(app.orders("completed"), 0);
    assert_eq!(app.stock(5), 320);
    let page = app.page("/cart").await;
    assert!(page.text.contains("Orbit USB-C Hub"), "{}", page.text);
}

#[tokio::test]
async fn short_stock_is_409_and_a_partial_checkout_orders_the_rest() {
    let app = spawn_app().await;
    app.execute("UPDATE products SET stock_level = 1 WHERE id = 2");
    app.add_to_cart(2, 5).await;
    let (status, body) = app
        .post_json("/checkout", &json!({"payment_method": "card"}))
        .await;
    assert_error(status, &body, 409, "stock");
    assert_eq!(body["orders"][0]["status"], "insufficient_stock");
    assert_eq!(app.count("SELECT count(*) AS n FROM orders"), 0);

    app.add_to_cart(1, 1).await;
    let (status, body) = app
        .post_json("/checkout", &json!({"payment_method": "bank_transfer"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "partial");
    let statuses: Vec<&str> = body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["insufficient_stock", "completed"]);
    assert_eq!(app.orders("completed"), 1);
    assert_eq!((app.stock(1), app.stock(2)), (179, 1));
    let page = app.page("/cart").await;
    assert!(
        page.text.contains("Nimbus Mechanical Keyboard"),
        "{}",
        page.text
    );
    assert!(
        !page.text.contains("Aurora Wireless Headphones"),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn a_checkout_while_the_api_is_down_is_503_and_keeps_the_cart() {
    let mut app = spawn_app().await;
    app.add_to_cart(1, 1).await;
    app.add_to_cart(2, 1).await;
    app.backend.as_mut().unwrap().stop().await;
    let (status, body) = app
        .post_json("/checkout", &json!({"payment_method": "card"}))
        .await;
    assert_error(status, &body, 503, "unavailable");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["orders"][0]["status"], "unavailable");
    assert_eq!(body["orders"][1]["status"], "not_attempted");
    // Still there: a second attempt fails the same way instead of finding an empty cart.
    let (status, _) = app
        .post_json("/checkout", &json!({"payment_method": "card"}))
        .await;
    assert_eq!(status, 503);
    assert_eq!(app.orders("completed"), 0);
}

#[tokio::test]
async fn a_checkout_without_a_session_is_anonymous_and_a_bad_session_orders_nothing() {
    let app = spawn_app().await;
    app.add_to_cart(5, 1).await;
    let (status, body) = app
        .post_json_as(
            "/checkout",
            &json!({"payment_method": "paypal"}),
            "Bearer 00000000000000000000000000000000000000000000000000000000000000ff",
        )
        .await;
    assert_error(status, &body, 401, "log in again");
    assert_eq!(app.count("SELECT count(*) AS n FROM orders"), 0);
    let page = app.page("/cart").await;
    assert!(
        page.text.contains("Orbit USB-C Hub"),
        "the cart is kept: {}",
        page.text
    );

    let (status, body) = app
        .post_json("/checkout", &json!({"payment_method": "paypal"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["orders"][0]["order"]["customer_id"].is_null(),
        "{body}"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE customer_id IS NULL"),
        1
    );
}

#[tokio::test]
async fn a_visitors_own_forwarded_for_does_not_reach_the_api() {
    // Anonymous checkouts from one visitor count against that visitor's address at the API,
    // whatever X-Forwarded-For the visitor sends: the sixth is refused (30 a minute, 5 at once).
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        app.add_to_cart(1, 1).await;
        let (status, body) = decode(
            app.client
                .post(app.url("/checkout"))
                .header("x-forwarded-for", format!("203.0.113.{n}"))
                .json(&json!({"payment_method": "card"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        if status != 201 {
            assert_error(
                status,
                &body,
                429,
                "too many anonymous orders from this address",
            );
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429]);
}
