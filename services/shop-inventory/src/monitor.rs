//! The refresh loop: every interval, read all products, restock those at their reorder point
//! (unless `restock_paused`), update the gauges and log what changed.
//!
//! Events: `stock_changed` (info) when a level moved since the last refresh, `low_stock`
//! (warn) when a product falls to its threshold, `critical_stock` (error) on every refresh while
//! a product is at or below a quarter of its threshold (out of stock included), so a log-based
//! alert sees a steady signal; `stock_replenished` (info) after a restock;
//! `inventory_refresh_failed` (error) once when the database stops answering and
//! `inventory_refresh_recovered` when it answers again.

use std::collections::{HashMap, HashSet};

use shop_db::{models::Product, Database};
use shop_faults::{FaultKind, Faults};

use crate::{metrics::InventoryMetrics, store};

/// The reorder point, relative to the low-stock threshold: restocking starts well above the
/// threshold, so healthy traffic never takes a product down to it — not even while this
/// service is stopped for a few minutes (the lab's service-down scenario), which would
/// otherwise set off the stock alerts too.
const REORDER_FACTOR: i32 = 3;
/// What a restock refills a product to, relative to its threshold.
const RESTOCK_FACTOR: i32 = 10;

pub struct StockMonitor {
    db: Database,
    metrics: InventoryMetrics,
    faults: Faults,
    levels: HashMap<i32, i32>,
    low: HashSet<i32>,
    series: HashSet<(String, String)>,
    failing: bool,
}

impl StockMonitor {
    pub fn new(db: Database, metrics: InventoryMetrics, faults: Faults) -> Self {
        Self {
            db,
            metrics,
            faults,
            levels: HashMap::new(),
            low: HashSet::new(),
            series: HashSet::new(),
            failing: false,
        }
    }

    pub async fn run(mut self, interval: std::time::Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.refresh().await;
        }
    }

    pub async fn refresh(&mut self) {
        let mut products = match self.db.run(store::all_products).await {
            Ok(products) => products,
            Err(err) => {
                if !self.failing {
                    log::error!(
                        event = "inventory_refresh_failed", cause:% = err;
                        "cannot read stock levels: {err}; gauges keep their last values"
                    );
                }
                self.failing = true;
                return;
            }
        };
        if self.failing {
            log::info!(event = "inventory_refresh_recovered"; "stock levels readable again");
            self.failing = false;
        }
        for product in &products {
            self.log_transitions(product);
        }
        if !self.faults.is_active(FaultKind::RestockPaused) {
            self.restock(&mut products).await;
        }
        self.series = self.metrics.update(&products, &self.series);
        self.levels = products.iter().map(|p| (p.id, p.stock_level)).collect();
    }

    fn log_transitions(&mut self, p: &Product) {
        if let Some(&old) = self.levels.get(&p.id) {
            if old != p.stock_level {
                log::info!(
                    event = "stock_changed", product_id = p.id, product_name = p.name.as_str(),
                    old_level = old, new_level = p.stock_level;
                    "stock of {} changed from {old} to {}", p.name, p.stock_level
                );
            }
        }
        if p.is_low() {
            if self.low.insert(p.id) {
                log::warn!(
                    event = "low_stock", product_id = p.id, product_name = p.name.as_str(),
                    stock_level = p.stock_level, threshold = p.low_stock_threshold;
                    "{} is low on stock: {} left, threshold {}", p.name, p.stock_level, p.low_stock_threshold
                );
            }
        } else {
            self.low.remove(&p.id);
        }
        if p.is_critical() {
            log::error!(
                event = "critical_stock", product_id = p.id, product_name = p.name.as_str(),
                stock_level = p.stock_level, threshold = p.low_stock_threshold;
                "{} is critically low: {} left, threshold {}", p.name, p.stock_level, p.low_stock_threshold
            );
        }
    }

    async fn restock(&mut self, products: &mut [Product]) {
        for product in products.iter_mut() {
            let reorder_point = product.low_stock_threshold.saturating_mul(REORDER_FACTOR);
            if product.stock_level > reorder_point {
                continue;
            }
            let id = product.id;
            let level = product
                .low_stock_threshold
                .saturating_mul(RESTOCK_FACTOR)
                .clamp(1, store::MAX_STOCK);
            match self
                .db
                .run(move |conn| store::restock_if_at_most(conn, id, reorder_point, level))
                .await
            {
                Ok(Some(restocked)) => {
                    log::info!(
                        event = "stock_replenished", product_id = restocked.id,
                        product_name = restocked.name.as_str(), old_level = product.stock_level,
                        new_level = restocked.stock_level;
                        "restocked {} from {} to {}", restocked.name, product.stock_level, restocked.stock_level
                    );
                    self.low.remove(&id);
                    *product = restocked;
                }
                Ok(None) => {}
                Err(err) => log::error!(
                    event = "restock_failed", product_id = id, cause:% = err;
                    "restocking product {id} failed: {err}"
                ),
            }
        }
    }
}
