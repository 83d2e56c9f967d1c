use serde_json::Value;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn the_home_page_lists_the_catalog_with_everything_escaped() {
    let app = spawn_app().await;
    app.execute(
        "INSERT INTO products (name, description, price, stock_level, low_stock_threshold) \
         VALUES ('<script>alert(1)</script> & Co', 'x', 1.00, 5, 1)",
    );
    let page = app.page("/").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(
        page.text.contains("Aurora Wireless Headphones"),
        "{}",
        page.text
    );
    assert!(page.text.contains("<a href=\"/products/1\">"));
    assert!(page.text.contains("149.00"));
    // `Lumen 27" 4K Monitor` from the seed catalog.
    assert!(page.text.contains("Lumen 27&quot; 4K Monitor"));
    assert!(!page.text.contains("Lumen 27\" 4K Monitor"));
    assert!(page
        .text
        .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"));
    assert!(!page.text.contains("<script>"));
}

#[tokio::test]
async fn a_product_page_shows_the_product() {
    let app = spawn_app().await;
    let page = app.page("/products/4").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.content_type.starts_with("text/html"));
    assert!(
        page.text.contains("<h1>Lumen 27&quot; 4K Monitor</h1>"),
        "{}",
        page.text
    );
    assert!(page.text.contains("IPS panel, USB-C 65 W power delivery"));
    assert!(page.text.contains("389.00"));
}

#[tokio::test]
async fn an_unknown_product_is_a_json_404_and_a_bad_id_a_json_400() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/products/99999").await;
    assert_error(status, &body, 404, "no product with id 99999");
    let (status, body) = app.get_json("/products/abc").await;
    assert_error(status, &body, 400, "id");
    let (status, body) = app.get_json("/no/such/page").await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn the_cart_page_shows_names_prices_and_the_total() {
    let app = spawn_app().await;
    let empty = app.page("/cart").await;
    assert_eq!(empty.status, 200);
    assert!(empty.text.contains("Your cart is empty"), "{}", empty.text);

    app.add_to_cart(1, 2).await;
    app.add_to_cart(4, 1).await;
    let page = app.page("/cart").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.content_type.starts_with("text/html"));
    assert!(
        page.text.contains("Aurora Wireless Headphones"),
        "{}",
        page.text
    );
    assert!(page.text.contains("Lumen 27&quot; 4K Monitor"));
    assert!(
        page.text
            .contains("<td>149.00</td><td>2</td><td>298.00</td>"),
        "{}",
        page.text
    );
    assert!(page.text.contains("Total: 687.00"), "{}", page.text);
    assert!(page.text.contains("Cart (3)"));
}

#[tokio::test]
async fn the_openapi_document_lists_the_pages_as_html() {
    let app = spawn_app().await;
    let (status, spec) = app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/",
        "/products/{id}",
        "/cart",
        "/cart/items",
        "/checkout",
        "/healthz",
        "/admin/faults",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
    let home: &Value = &spec["paths"]["/"]["get"]["responses"]["200"]["content"];
    assert!(
        home.as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("text/html")),
        "{home}"
    );
}
