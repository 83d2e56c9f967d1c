use std::collections::HashSet;

use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};
use shop_db::models::Product;

/// `inventory_stock_level{product_id,product_name}` and `inventory_low_stock_products`.
#[derive(Clone)]
pub struct InventoryMetrics {
    stock_level: IntGaugeVec,
    low_stock: IntGauge,
}

impl InventoryMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let stock_level = IntGaugeVec::new(
            Opts::new("inventory_stock_level", "Units in stock per product."),
            &["product_id", "product_name"],
        )?;
        let low_stock = IntGauge::new(
            "inventory_low_stock_products",
            "Products at or below their low-stock threshold.",
        )?;
        registry.register(Box::new(stock_level.clone()))?;
        registry.register(Box::new(low_stock.clone()))?;
        Ok(Self {
            stock_level,
            low_stock,
        })
    }

    /// Sets the gauges to `products`; drops the series of products that are gone (or renamed)
    /// instead of resetting everything, so a scrape never sees an empty set.
    pub fn update(
        &self,
        products: &[Product],
        previous: &HashSet<(String, String)>,
    ) -> HashSet<(String, String)> {
        let current: HashSet<(String, String)> = products
            .iter()
            .map(|p| (p.id.to_string(), p.name.clone()))
            .collect();
        for product in products {
            self.stock_level
                .with_label_values(&[&product.id.to_string(), &product.name])
                .set(i64::from(product.stock_level));
        }
        for (id, name) in previous.difference(&current) {
            let _ = self.stock_level.remove_label_values(&[id, name]);
        }
        self.low_stock
            .set(products.iter().filter(|p| p.is_low()).count() as i64);
        current
    }
}
