use crate::helpers::{assert_client_error, spawn_app};

#[tokio::test]
async fn the_catalog_lists_the_seeded_products() {
    let app = spawn_app().await;
    let (status, body) = app.get("/products").await;
    assert_eq!(status, 200);
    let products = body.as_array().unwrap();
    assert!(products.len() >= 20);
    let first = &products[0];
    assert!(
        first["price"].as_str().unwrap().contains('.'),
        "price is a decimal string: {first}"
    );
    assert_eq!(first["in_stock"], true);
}

#[tokio::test]
async fn search_limit_and_offset_narrow_the_list() {
    let app = spawn_app().await;
    let (_, body) = app.get("/products?search=MUG").await;
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Glacier Insulated Mug"]);
    let (_, body) = app.get("/products?search=%25").await;
    assert!(
        body.as_array().unwrap().is_empty(),
        "a % is searched literally: {body}"
    );
    let (_, page) = app.get("/products?limit=2&offset=1").await;
    let ids: Vec<i64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [2, 3]);
}

#[tokio::test]
async fn one_product_or_a_404() {
    let app = spawn_app().await;
    let (status, body) = app.get("/products/3").await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], 3);
    let (status, body) = app.get("/products/9999").await;
    assert_client_error(status, &body, 404, "no product");
}

#[tokio::test]
async fn bad_query_parameters_are_400s() {
    let app = spawn_app().await;
    let (status, body) = app.get("/products/abc").await;
    assert_client_error(status, &body, 400, "id");
    let (status, body) = app.get("/products?limit=0").await;
    assert_client_error(status, &body, 400, "limit");
    let (status, body) = app.get("/products?limit=many").await;
    assert_client_error(status, &body, 400, "limit");
    // Found by bench/fuzz: PostgreSQL's text cannot hold NUL, so it is refused up front.
    let (status, body) = app.get("/products?search=a%00b").await;
    assert_client_error(status, &body, 400, "NUL");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_app().await;
    let (status, body) = app.get("/no/such/route").await;
    assert_client_error(status, &body, 404, "not found");
    let response = app
        .client
        .delete(format!("{}/products", app.address))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::helpers::decode(response).await;
    assert_eq!(status, 405, "{body}");
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = spawn_app().await;
    let (status, body) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let paths = body["paths"].as_object().unwrap();
    for path in [
        "/products",
        "/products/{id}",
        "/orders",
        "/orders/{id}",
        "/login",
        "/healthz",
        "/admin/faults",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
}
