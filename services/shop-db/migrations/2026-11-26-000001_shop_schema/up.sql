-- The shop's tables. Money is NUMERIC, never float; every time column is timestamptz and
-- indexed where an alert rule or dashboard filters on it.

CREATE TABLE products (
    id                  SERIAL PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    description         TEXT NOT NULL DEFAULT '',
    price               NUMERIC(10, 2) NOT NULL CHECK (price >= 0),
    stock_level         INTEGER NOT NULL CHECK (stock_level >= 0),
    low_stock_threshold INTEGER NOT NULL DEFAULT 10 CHECK (low_stock_threshold >= 0),
    last_updated        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE customers (
    id            SERIAL PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    -- argon2id PHC string
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id                BIGSERIAL PRIMARY KEY,
    product_id        INTEGER NOT NULL REFERENCES products (id),
    customer_id       INTEGER REFERENCES customers (id),
    quantity          INTEGER NOT NULL CHECK (quantity > 0),
    total_amount      NUMERIC(12, 2) NOT NULL CHECK (total_amount >= 0),
    -- pending: stock reserved, payment under way; completed: paid; failed: stock released
    order_status      TEXT NOT NULL CHECK (order_status IN ('pending', 'completed', 'failed')),
    payment_method    TEXT NOT NULL,
    payment_reference TEXT,
    failure_reason    TEXT,
    order_time        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX orders_order_time_idx ON orders (order_time);
CREATE INDEX orders_status_time_idx ON orders (order_status, order_time);
CREATE INDEX orders_product_idx ON orders (product_id);

CREATE TABLE login_attempts (
    id           BIGSERIAL PRIMARY KEY,
    email        TEXT NOT NULL,
    ip_address   INET NOT NULL,
    success      BOOLEAN NOT NULL,
    attempt_time TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_time_idx ON login_attempts (attempt_time);
CREATE INDEX login_attempts_ip_time_idx ON login_attempts (ip_address, attempt_time);

-- Products at or below their reorder threshold (the seed's low-inventory alert reads this).
CREATE VIEW low_stock_products AS
SELECT id, name, stock_level, low_stock_threshold, last_updated
FROM products
WHERE stock_level <= low_stock_threshold;

-- Orders, items and revenue per hour and status, for dashboards.
CREATE VIEW order_stats_hourly AS
SELECT date_trunc('hour', order_time) AS hour,
       order_status,
       count(*)                       AS orders,
       coalesce(sum(quantity), 0)     AS items,
       coalesce(sum(total_amount), 0) AS revenue
FROM orders
GROUP BY 1, 2;
