use std::time::{Duration, Instant};

use serde_json::json;
use shop_testkit::TestPostgres;

use crate::helpers::{spawn_app_with, Options};

#[tokio::test]
async fn without_the_database_the_api_degrades_and_recovers_without_a_restart() {
    let pg = TestPostgres::start().unwrap();
    let url = pg.create_database();
    shop_db::run_migrations(&url).unwrap();
    let app = spawn_app_with(Options {
        database_url: Some(url),
        ..Options::default()
    })
    .await;
    let order = json!({"product_id": 1, "quantity": 1, "payment_method": "card"});
    assert_eq!(app.post_json("/orders", &order).await.0, 201);
    let (_, health) = app.get("/healthz").await;
    assert_eq!(health["status"], "ok");

    pg.stop().unwrap();
    let (status, body) = app.get("/products/1").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("database is unavailable"));
    assert!(!body.to_string().to_lowercase().contains("sql"));
    let (status, body) = app.post_json("/orders", &order).await;
    assert_eq!(status, 503, "{body}");
    let (status, health) = app.get("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("degraded")));
    assert_eq!(health["database"], "unavailable");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);

    pg.restart().unwrap();
    let back = Instant::now();
    loop {
        let (status, _) = app.post_json("/orders", &order).await;
        if status == 201 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "orders still fail {:?} after the database returned",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, health) = app.get("/healthz").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE order_status = 'pending'"),
        0
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE order_status = 'completed'"),
        2
    );
}

#[tokio::test]
async fn an_api_started_while_the_database_is_down_serves_degraded_then_recovers() {
    let pg = TestPostgres::start().unwrap();
    let url = pg.create_database();
    shop_db::run_migrations(&url).unwrap();
    pg.stop().unwrap();
    let app = spawn_app_with(Options {
        database_url: Some(url),
        ..Options::default()
    })
    .await;
    let (_, health) = app.get("/healthz").await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(app.get("/products").await.0, 503);
    pg.restart().unwrap();
    let back = Instant::now();
    while app.get("/products").await.0 != 200 {
        assert!(back.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
