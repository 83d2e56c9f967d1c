//! Order rate limits: a flood of anonymous orders, from one address or from many, cannot
//! empty the catalogue; every refusal is a 429 with `Retry-After` and a JSON error, and
//! writes nothing.

use serde_json::json;
use shop_api::OrderLimits;

use crate::helpers::{assert_client_error, spawn_app, spawn_app_with, Answer, Options, TestApp};

/// Each product's (id, stock) as the API lists it.
async fn catalogue(app: &TestApp) -> Vec<(i64, i64)> {
    let (status, products) = app.get("/products?limit=100").await;
    assert_eq!(status, 200);
    products
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_i64().unwrap(),
                p["stock_level"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// `orders` anonymous orders at once, each for as much of a product as one order may take
/// (its whole stock up to 100), round the catalogue; `forwarded_for(n)` is the n-th's
/// `X-Forwarded-For`.
async fn flood(
    app: &TestApp,
    orders: usize,
    forwarded_for: impl Fn(usize) -> String,
) -> Vec<Answer> {
    let products = catalogue(app).await;
    let mut tasks = Vec::new();
    for n in 0..orders {
        let (id, stock) = products[n % products.len()];
        let request = app
            .client
            .post(format!("{}/orders", app.address))
            .header("x-forwarded-for", forwarded_for(n))
            .json(&json!({"product_id": id, "quantity": stock.min(100), "payment_method": "card"}));
        tasks.push(tokio::spawn(async move {
            Answer::read(request.send().await.unwrap()).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

fn assert_refusals_are_429s_with_retry_after(answers: &[Answer], mentions: &str) {
    for a in answers.iter().filter(|a| a.status != 201) {
        assert_client_error(a.status, &a.body, 429, mentions);
        let seconds: u64 = a
            .retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .expect("whole seconds");
        assert!((1..=60).contains(&seconds), "{seconds}");
    }
}

#[tokio::test]
async fn a_flood_of_anonymous_orders_from_one_address_takes_only_its_burst() {
    let app = spawn_app().await;
    let before = catalogue(&app).await;
    // The 58 orders, from one client behind the lab's proxy.
    let answers = flood(&app, 58, |_| "203.0.113.9".into()).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    assert!(
        (1..=5).contains(&created),
        "a client may place a sixth of its 30 a minute at once, got {created}"
    );
    assert_refusals_are_429s_with_retry_after(
        &answers,
        "too many anonymous orders from this address",
    );

    let after = catalogue(&app).await;
    let touched = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    let in_stock = after.iter().filter(|(_, stock)| *stock > 0).count();
    assert!(
        touched <= created,
        "{touched} products changed for {created} orders"
    );
    assert!(in_stock >= before.len() - 5, "{after:?}");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders"),
        created as i64,
        "a refused order writes nothing"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!(
            "orders_total{{status=\"rate_limited\"}} {}",
            58 - created
        )),
        "{metrics}"
    );
    // Another client is not held back by this one.
    let (status, body) = app
        .post_with(
            "/orders",
            &json!({"product_id": 1, "quantity": 1, "payment_method": "card"}),
            &[("x-forwarded-for", "198.51.100.20")],
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_flood_from_many_addresses_is_held_by_the_global_budget() {
    let app = spawn_app().await;
    let before = catalogue(&app).await;
    let answers = flood(&app, 200, |n| format!("198.18.{}.{}", n / 250, n % 250 + 1)).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    // A sixth of 120 a minute at once, plus what refills while the flood is answered.
    assert!(
        (1..=25).contains(&created),
        "the shop takes about 20 orders at once, got {created}"
    );
    assert_refusals_are_429s_with_retry_after(&answers, "the shop is taking too many orders");
    let after = catalogue(&app).await;
    let in_stock = after.iter().filter(|(_, stock)| *stock > 0).count();
    // One order takes at most 100 units: only products with no more than that can be emptied.
    let small = before.iter().filter(|(_, stock)| *stock <= 100).count();
    assert!(in_stock >= before.len() - small, "{after:?}");
    assert!(
        in_stock > before.len() / 2,
        "the catalogue is not emptied: {after:?}"
    );
}

#[tokio::test]
async fn a_logged_in_customer_has_a_budget_of_their_own() {
    let app = spawn_app_with(Options {
        order_limits: OrderLimits {
            per_customer: 12,
            ..OrderLimits::default()
        },
        ..Options::default()
    })
    .await;
    let alice = app.login("alice@example.com").await;
    let bob = app.login("bob@example.com").await;
    let order = json!({"product_id": 1, "quantity": 1, "payment_method": "card"});
    for n in 0..2 {
        let (status, body) = app
            .post_with("/orders", &order, &[("authorization", &alice)])
            .await;
        assert_eq!(status, 201, "order {n}: {body}");
    }
    // From another address too: the budget is the account's.
    let (status, body) = app
        .post_with(
            "/orders",
            &order,
            &[
                ("authorization", &alice),
                ("x-forwarded-for", "192.0.2.200"),
            ],
        )
        .await;
    assert_client_error(status, &body, 429, "too many orders for this customer");
    let (status, body) = app
        .post_with("/orders", &order, &[("authorization", &bob)])
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.post_json("/orders", &order).await;
    assert_eq!(
        status, 201,
        "anonymous orders have their own budget: {body}"
    );
}

#[tokio::test]
async fn healthy_traffic_stays_within_the_default_limits() {
    // The traffic generator's checkouts at its default rate: about one order every 2 s,
    // a fifth of them anonymous from the frontend's address. Ten seconds of it at once is far
    // more than the lab ever sends together, and all of it is accepted.
    let app = spawn_app().await;
    let alice = app.login("alice@example.com").await;
    let order = json!({"product_id": 1, "quantity": 1, "payment_method": "card"});
    for n in 0..5 {
        let (status, body) = app.post_json("/orders", &order).await;
        assert_eq!(status, 201, "anonymous order {n}: {body}");
        let (status, body) = app
            .post_with("/orders", &order, &[("authorization", &alice)])
            .await;
        assert_eq!(status, 201, "alice's order {n}: {body}");
    }
}
