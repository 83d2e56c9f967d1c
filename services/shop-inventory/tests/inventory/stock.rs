use reqwest::Method;
use serde_json::json;
use shop_testkit::TestPostgres;

use crate::helpers::{metric, migrated_database, spawn_app, spawn_app_on, spawn_with_token};

#[tokio::test]
async fn stock_levels_come_from_the_database_and_nothing_is_low_at_first() {
    let app = spawn_app().await;
    let (status, stock) = app.get("/stock").await;
    assert_eq!(status, 200);
    let items = stock.as_array().unwrap();
    assert!(items.len() >= 20);
    assert_eq!(items[0]["product_id"], 1);
    assert_eq!(items[0]["stock_level"], 180);
    assert!(items.iter().all(|i| i["status"] == "ok"));
    let (_, low) = app.get("/stock/low").await;
    assert_eq!(low, json!([]));
}

#[tokio::test]
async fn gauges_show_every_product_and_the_low_stock_count() {
    let app = spawn_app().await;
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "inventory_stock_level{product_id=\"1\",product_name=\"Aurora Wireless Headphones\"}"
        ),
        Some(180.0),
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "inventory_low_stock_products"), Some(0.0));
    assert_eq!(metrics.matches("inventory_stock_level{").count(), 24);
}

#[tokio::test]
async fn a_product_at_its_reorder_point_is_restocked_automatically() {
    let app = spawn_app().await;
    // Product 3 has threshold 25: reorder point 75, refill to 250.
    let (status, item) = app
        .request(Method::PUT, "/stock/3", Some(json!({"stock_level": 75})))
        .await;
    assert_eq!((status, item["status"].as_str()), (200, Some("ok")));
    app.eventually(5, "product 3 restocked to 250", || async {
        app.get("/stock").await.1[2]["stock_level"] == 250
    })
    .await;
    app.request(Method::PUT, "/stock/3", Some(json!({"stock_level": 76})))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        app.get("/stock").await.1[2]["stock_level"],
        76,
        "above the reorder point: left alone"
    );
    assert_eq!(
        metric(&app.metrics().await, "inventory_low_stock_products"),
        Some(0.0)
    );
}

#[tokio::test]
async fn with_restocking_paused_a_depleted_product_stays_critical_until_the_fault_ends() {
    let app = spawn_app().await;
    let (status, _) = app
        .request(
            Method::POST,
            "/admin/faults",
            Some(json!({"kind": "restock_paused", "duration_seconds": 60})),
        )
        .await;
    assert_eq!(status, 201);
    app.request(Method::PUT, "/stock/7", Some(json!({"stock_level": 0})))
        .await;
    app.eventually(5, "the gauge counts product 7 as low", || async {
        metric(&app.metrics().await, "inventory_low_stock_products") == Some(1.0)
    })
    .await;
    let (_, low) = app.get("/stock/low").await;
    assert_eq!(low[0]["product_id"], 7);
    assert_eq!(low[0]["status"], "critical");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        app.get("/stock/low").await.1.as_array().unwrap().len(),
        1,
        "not restocked while paused"
    );

    app.request(Method::DELETE, "/admin/faults", None).await;
    app.eventually(5, "product 7 restocked after the fault", || async {
        app.get("/stock/low").await.1 == json!([])
    })
    .await;
    assert_eq!(
        metric(&app.metrics().await, "inventory_low_stock_products"),
        Some(0.0)
    );
}

#[tokio::test]
async fn manual_restocks_add_units_and_refuse_bad_input() {
    let app = spawn_app().await;
    let (status, item) = app
        .request(
            Method::POST,
            "/stock/2/restock",
            Some(json!({"quantity": 10})),
        )
        .await;
    assert_eq!((status, item["stock_level"].as_i64()), (200, Some(150)));
    let cases = [
        (
            Method::POST,
            "/stock/2/restock",
            json!({"quantity": 0}),
            400,
            "quantity",
        ),
        (
            Method::POST,
            "/stock/2/restock",
            json!({"quantity": "ten"}),
            400,
            "quantity",
        ),
        (
            Method::POST,
            "/stock/999/restock",
            json!({"quantity": 1}),
            404,
            "no product",
        ),
        (
            Method::PUT,
            "/stock/2",
            json!({"stock_level": -1}),
            400,
            "stock_level",
        ),
        (Method::PUT, "/stock/2", json!({}), 400, "stock_level"),
        (
            Method::PUT,
            "/stock/999",
            json!({"stock_level": 1}),
            404,
            "no product",
        ),
        (
            Method::PUT,
            "/stock/abc",
            json!({"stock_level": 1}),
            400,
            "product_id",
        ),
    ];
    for (method, path, body, expected, mentions) in cases {
        let (status, response) = app.request(method.clone(), path, Some(body)).await;
        assert_eq!(status, expected, "{method} {path}: {response}");
        assert!(
            response["error"].as_str().unwrap().contains(mentions),
            "{response}"
        );
    }
    app.request(
        Method::PUT,
        "/stock/2",
        Some(json!({"stock_level": 1_000_000})),
    )
    .await;
    let (status, response) = app
        .request(
            Method::POST,
            "/stock/2/restock",
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(status, 409, "{response}");
    assert_eq!(app.get("/stock").await.1[1]["stock_level"], 1_000_000);
}

#[tokio::test]
async fn without_the_database_stock_is_503_health_degraded_and_metrics_keep_their_values() {
    let pg = TestPostgres::start().unwrap();
    let url = pg.create_database();
    shop_db::run_migrations(&url).unwrap();
    let app = spawn_app_on(url).await;
    pg.stop().unwrap();
    let (status, body) = app.get("/stock").await;
    assert_eq!(status, 503, "{body}");
    let (status, health) = app.get("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("degraded")));
    assert_eq!(
        metric(&app.metrics().await, "inventory_low_stock_products"),
        Some(0.0)
    );
    pg.restart().unwrap();
    app.eventually(5, "stock readable again", || async {
        app.get("/stock").await.0 == 200
    })
    .await;
}

#[tokio::test]
async fn a_restock_while_the_database_is_down_is_503_and_restocks_work_once_it_returns() {
    let pg = TestPostgres::start().unwrap();
    let url = pg.create_database();
    shop_db::run_migrations(&url).unwrap();
    let app = spawn_app_on(url).await;
    let restock = || {
        app.request(
            Method::POST,
            "/stock/3/restock",
            Some(json!({"quantity": 2})),
        )
    };
    let (status, before) = restock().await;
    assert_eq!(status, 200, "{before}");
    pg.stop().unwrap();
    let (status, body) = restock().await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].is_string(), "{body}");
    pg.restart().unwrap();
    app.eventually(5, "restocking works again", || async {
        restock().await.0 == 200
    })
    .await;
    // The failed restock took nothing: the level is the first restock's plus the last one's.
    let (_, stock) = app.get("/stock").await;
    let level = stock
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product_id"] == 3)
        .unwrap()["stock_level"]
        .as_i64()
        .unwrap();
    assert_eq!(level, before["stock_level"].as_i64().unwrap() + 2);
}

#[tokio::test]
async fn stock_changes_need_the_operator_token() {
    let app = spawn_app().await;
    let before = app.get("/stock").await.1;
    let wrong = format!("{}x", app.authorization.clone().unwrap());
    let changes = [
        (Method::PUT, "/stock/3", json!({"stock_level": 0})),
        (Method::POST, "/stock/3/restock", json!({"quantity": 5})),
    ];
    for (method, path, body) in &changes {
        for authorization in [None, Some(wrong.as_str()), Some("Bearer nope")] {
            let (status, response) = app
                .request_as(method.clone(), path, Some(body.clone()), authorization)
                .await;
            assert_eq!(status, 401, "{method} {path} {authorization:?}: {response}");
            assert!(
                response["error"]
                    .as_str()
                    .unwrap()
                    .contains("operator token"),
                "{response}"
            );
        }
    }
    assert_eq!(app.get("/stock").await.1, before, "nothing changed");
    // With the token it works (what labctl's stock-depletion scenario does).
    let (status, item) = app
        .request(Method::PUT, "/stock/3", Some(json!({"stock_level": 0})))
        .await;
    assert_eq!(
        (status, item["stock_level"].as_i64()),
        (200, Some(0)),
        "{item}"
    );
}

#[tokio::test]
async fn without_an_operator_token_stock_cannot_be_changed_over_http() {
    let app = spawn_with_token(migrated_database(), false).await;
    let (status, body) = app
        .request_as(
            Method::PUT,
            "/stock/3",
            Some(json!({"stock_level": 0})),
            Some("Bearer anything-at-all-0123456789"),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("--fault-token-file"));
    assert_eq!(app.get("/stock").await.0, 200, "reading stays open");
}
