//! The pages' HTML. Everything that comes from the API is escaped.

use std::fmt::Write;

use crate::api_client::Product;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A cart line with its product, when the API still knows it.
pub struct CartRow {
    pub product_id: i32,
    pub quantity: i32,
    pub product: Option<Product>,
}

fn layout(title: &str, cart_units: i32, main: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title} · Alertlab Shop</title>\n</head>\n<body>\n\
         <header><a href=\"/\">Alertlab Shop</a> · <a href=\"/cart\">Cart ({cart_units})</a></header>\n\
         <main>\n{main}</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

fn stock_note(product: &Product) -> &'static str {
    if product.in_stock {
        "in stock"
    } else {
        "out of stock"
    }
}

pub fn home(products: &[Product], cart_units: i32) -> String {
    let mut main = String::from("<h1>Products</h1>\n<ul class=\"products\">\n");
    for p in products {
        let _ = writeln!(
            main,
            "<li><a href=\"/products/{id}\">{name}</a> <span class=\"price\">{price}</span> \
             <span class=\"stock\">{stock}</span></li>",
            id = p.id,
            name = escape(&p.name),
            price = escape(&p.price),
            stock = stock_note(p),
        );
    }
    main.push_str("</ul>\n");
    if products.is_empty() {
        main.push_str("<p>No products yet.</p>\n");
    }
    layout("Products", cart_units, &main)
}

pub fn product(p: &Product, cart_units: i32) -> String {
    let main = format!(
        "<article class=\"product\" data-product-id=\"{id}\">\n<h1>{name}</h1>\n\
         <p class=\"description\">{description}</p>\n<p class=\"price\">{price}</p>\n\
         <p class=\"stock\">{stock} ({level} left)</p>\n</article>\n",
        id = p.id,
        name = escape(&p.name),
        description = escape(&p.description),
        price = escape(&p.price),
        stock = stock_note(p),
        level = p.stock_level,
    );
    layout(&p.name, cart_units, &main)
}

pub fn cart(rows: &[CartRow], cart_units: i32) -> String {
    if rows.is_empty() {
        return layout(
            "Cart",
            cart_units,
            "<h1>Your cart</h1>\n<p class=\"empty\">Your cart is empty.</p>\n",
        );
    }
    let mut main = String::from(
        "<h1>Your cart</h1>\n<table class=\"cart\">\n\
         <tr><th>Product</th><th>Price</th><th>Quantity</th><th>Subtotal</th></tr>\n",
    );
    let mut total = Some(0_i64);
    for row in rows {
        match &row.product {
            Some(p) => {
                let subtotal = parse_cents(&p.price).map(|c| c * i64::from(row.quantity));
                total = total.zip(subtotal).map(|(t, s)| t + s);
                let _ = writeln!(
                    main,
                    "<tr data-product-id=\"{id}\"><td><a href=\"/products/{id}\">{name}</a></td>\
                     <td>{price}</td><td>{quantity}</td><td>{subtotal}</td></tr>",
                    id = row.product_id,
                    name = escape(&p.name),
                    price = escape(&p.price),
                    quantity = row.quantity,
                    subtotal = subtotal.map_or_else(|| "?".to_owned(), format_cents),
                );
            }
            None => {
                total = None;
                let _ = writeln!(
                    main,
                    "<tr data-product-id=\"{id}\"><td>Product {id} (no longer available)</td>\
                     <td></td><td>{quantity}</td><td></td></tr>",
                    id = row.product_id,
                    quantity = row.quantity,
                );
            }
        }
    }
    let _ = write!(
        main,
        "</table>\n<p class=\"total\">Total: {}</p>\n",
        total.map_or_else(|| "?".to_owned(), format_cents)
    );
    layout("Cart", cart_units, &main)
}

/// `149.00` → 14900. The API always sends two decimals; anything else is `None`.
pub fn parse_cents(price: &str) -> Option<i64> {
    let (units, cents) = price.trim().split_once('.').unwrap_or((price.trim(), "00"));
    if cents.len() != 2 || units.is_empty() || !units.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let units: i64 = units.parse().ok()?;
    let cents: i64 = cents.parse().ok()?;
    units.checked_mul(100)?.checked_add(cents)
}

pub fn format_cents(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(name: &str, price: &str) -> Product {
        Product {
            id: 7,
            name: name.to_owned(),
            description: "a <b>bold</b> claim".to_owned(),
            price: price.to_owned(),
            stock_level: 3,
            in_stock: true,
        }
    }

    #[test]
    fn markup_from_the_api_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">Tom's & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom&#39;s &amp; Jerry&#39;s&lt;/a&gt;"
        );
        let page = super::product(&product("<script>alert(1)</script>", "1.00"), 0);
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("a &lt;b&gt;bold&lt;/b&gt; claim"));
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn the_cart_shows_subtotals_and_the_total() {
        let rows = [
            CartRow {
                product_id: 7,
                quantity: 3,
                product: Some(product("Mug", "21.50")),
            },
            CartRow {
                product_id: 8,
                quantity: 1,
                product: Some(product("Pen", "0.99")),
            },
        ];
        let page = cart(&rows, 4);
        assert!(page.contains("<td>64.50</td>"), "{page}");
        assert!(page.contains("Total: 65.49"), "{page}");
        assert!(page.contains("Cart (4)"));
    }

    #[test]
    fn prices_are_parsed_to_cents() {
        assert_eq!(parse_cents("149.00"), Some(14900));
        assert_eq!(parse_cents("0.05"), Some(5));
        assert_eq!(parse_cents("12"), Some(1200));
        assert_eq!(parse_cents("1.5"), None);
        assert_eq!(parse_cents("-1.00"), None);
        assert_eq!(parse_cents("abc"), None);
        assert_eq!(format_cents(6549), "65.49");
        assert_eq!(format_cents(5), "0.05");
    }
}
