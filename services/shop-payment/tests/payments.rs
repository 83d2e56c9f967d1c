//! The payment service over HTTP.

use std::path::PathBuf;

use serde_json::{json, Value};
use shop_payment::{Application, Settings};
use shop_telemetry::CommonArgs;

struct TestApp {
    address: String,
    token: String,
    client: reqwest::Client,
}

async fn spawn(decline_rate: f64) -> TestApp {
    let token = shop_testkit::secrets::token_file("payment-token");
    let app = Application::build(Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        decline_rate,
        payment_token_file: token.path.clone(),
        common: CommonArgs {
            log_dir: PathBuf::from("logs"),
            log_level: log::LevelFilter::Off,
            enable_faults: true,
            fault_token_file: Some(shop_testkit::faults::fault_token_file()),
            ..CommonArgs::default()
        },
    })
    .await
    .unwrap();
    let address = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        token: token.token,
        client: reqwest::Client::new(),
    }
}

impl TestApp {
    /// A request as the API service sends it, with the payment token; requests to the fault
    /// API carry the fault token instead.
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_with(path, body, Some(&self.token.clone())).await
    }

    async fn post_with(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .json(&body);
        if path.starts_with("/admin/") {
            request = request.header("authorization", shop_testkit::faults::fault_bearer());
        } else if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

fn payment(method: &str, amount: Value) -> Value {
    json!({"order_ref": "order-1", "amount": amount, "method": method})
}

#[tokio::test]
async fn a_payment_is_authorized_counted_and_summed() {
    let app = spawn(0.0).await;
    let (status, body) = app
        .post("/payments", payment("paypal", json!("19.99")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "authorized");
    assert!(body["transaction_id"].as_str().unwrap().starts_with("txn_"));
    app.post("/payments", payment("card", json!(5))).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("payments_total{method=\"paypal\",status=\"authorized\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("payment_amount_total 24.99"), "{metrics}");
}

#[tokio::test]
async fn ordinary_declines_are_402_and_not_summed() {
    let app = spawn(1.0).await;
    let (status, body) = app.post("/payments", payment("card", json!("10.00"))).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["status"], "declined");
    assert!(["insufficient_funds", "do_not_honor", "expired_instrument"]
        .contains(&body["reason"].as_str().unwrap()));
    let metrics = app.metrics().await;
    assert!(metrics.contains("payments_total{method=\"card\",status=\"declined\"} 1"));
    assert!(metrics.contains("payment_amount_total 0"));
}

#[tokio::test]
async fn a_processor_outage_fails_only_its_method_and_ends_with_the_fault() {
    let app = spawn(0.0).await;
    let (status, _) = app
        .post(
            "/admin/faults",
            json!({"kind": "decline_rate", "value": 1.0, "method": "card", "duration_seconds": 1}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = app.post("/payments", payment("card", json!("3.50"))).await;
    assert_eq!(
        (status, body["status"].as_str(), body["reason"].as_str()),
        (402, Some("failed"), Some("processor_unavailable"))
    );
    assert_eq!(
        app.post("/payments", payment("gift_card", json!("3.50")))
            .await
            .0,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        app.post("/payments", payment("card", json!("3.50")))
            .await
            .0,
        200
    );
    assert!(app
        .metrics()
        .await
        .contains("payments_total{method=\"card\",status=\"failed\"} 1"));
}

#[tokio::test]
async fn a_processor_outage_names_a_known_method_so_the_fault_list_stays_bounded() {
    let app = spawn(0.0).await;
    for n in 0..50 {
        let (status, body) = app
            .post(
                "/admin/faults",
                json!({"kind": "decline_rate", "value": 1.0, "method": format!("method-{n}"), "duration_seconds": 600}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("`method` must be one of card, paypal, bank_transfer, gift_card"),
            "{body}"
        );
    }
    let listed = app
        .client
        .get(format!("{}/admin/faults", app.address))
        .header("authorization", shop_testkit::faults::fault_bearer())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(listed["faults"], json!([]));
}

#[tokio::test]
async fn refunds_return_money_once() {
    let app = spawn(0.0).await;
    let (_, paid) = app.post("/payments", payment("card", json!("30.00"))).await;
    let tx = paid["transaction_id"].clone();
    let (status, refund) = app
        .post("/refunds", json!({"transaction_id": tx, "amount": "10"}))
        .await;
    assert_eq!(
        (status, refund["remaining"].as_str()),
        (200, Some("20")),
        "{refund}"
    );
    let (status, body) = app
        .post("/refunds", json!({"transaction_id": tx, "amount": "25"}))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = app.post("/refunds", json!({"transaction_id": tx})).await;
    assert_eq!(status, 200);
    let (status, body) = app.post("/refunds", json!({"transaction_id": tx})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("already fully refunded"));
    let (status, _) = app
        .post("/refunds", json!({"transaction_id": "txn_unknown"}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_payments_are_400s_naming_the_field() {
    let app = spawn(0.0).await;
    let cases = [
        (payment("card", json!("0")), "amount"),
        (payment("card", json!("-5")), "amount"),
        (payment("card", json!("1.005")), "amount"),
        (payment("card", json!("lots")), "amount"),
        (payment("cash", json!("1")), "method"),
        (
            json!({"order_ref": "", "amount": "1", "method": "card"}),
            "order_ref",
        ),
        (json!({"amount": "1", "method": "card"}), "order_ref"),
    ];
    for (body, field) in cases {
        let (status, response) = app.post("/payments", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {response}");
        assert!(
            response["error"].as_str().unwrap().contains(field),
            "{response} should name {field}"
        );
    }
    assert!(app.metrics().await.contains("payment_amount_total 0"));
}

#[tokio::test]
async fn payments_and_refunds_need_the_payment_token() {
    let app = spawn(0.0).await;
    let (_, paid) = app.post("/payments", payment("card", json!("30.00"))).await;
    let tx = paid["transaction_id"].clone();
    let wrong = format!("{}x", app.token);
    for (path, body) in [
        ("/payments", payment("card", json!("12.00"))),
        ("/refunds", json!({"transaction_id": tx})),
    ] {
        let (status, response) = app.post_with(path, body.clone(), None).await;
        assert_eq!(status, 401, "{path} without a token: {response}");
        assert!(
            response["error"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer"),
            "{response}"
        );
        for token in [wrong.as_str(), "", "not-the-token-at-all"] {
            let (status, response) = app.post_with(path, body.clone(), Some(token)).await;
            assert_eq!(status, 401, "{path} with token `{token}`: {response}");
            assert!(response["error"].is_string(), "{response}");
        }
    }
    // Nothing moved: one authorization (the one with the token), nothing refunded.
    let metrics = app.metrics().await;
    assert!(metrics.contains("payment_amount_total 30"), "{metrics}");
    let (status, refund) = app.post("/refunds", json!({"transaction_id": tx})).await;
    assert_eq!(
        (
            status,
            refund["amount"].as_str(),
            refund["remaining"].as_str()
        ),
        (200, Some("30"), Some("0")),
        "the whole amount was still there to refund: {refund}"
    );
}

#[tokio::test]
async fn the_service_does_not_start_without_a_usable_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for (contents, expected) in [
        (None, "cannot read --payment-token-file"),
        (Some(""), "is empty"),
        (Some("short"), "at least 16 characters"),
    ] {
        let path = dir.join(format!("token-{}", expected.len()));
        if let Some(text) = contents {
            std::fs::write(&path, text).unwrap();
        }
        let err = Application::build(Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            decline_rate: 0.0,
            payment_token_file: path,
            common: CommonArgs {
                log_dir: PathBuf::from("logs"),
                log_level: log::LevelFilter::Off,
                ..CommonArgs::default()
            },
        })
        .await
        .err()
        .expect("refused");
        assert!(err.to_string().contains(expected), "{err}");
    }
}
