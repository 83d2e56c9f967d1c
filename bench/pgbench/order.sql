-- The API's POST /orders in the database (services/shop-api/src/store/orders.rs), minus the
-- payment call between its two statements, with the values bound as parameters as the API
-- binds them (shop-bench passes :pending, :completed, :method and :reference with -D):
--   reserve: take the stock if enough is left and record the order pending, in one statement;
--   complete: mark it completed with the payment's reference.
\set product_id random(1, 24)
\set quantity 1
WITH reserved AS (UPDATE products SET stock_level = stock_level - :quantity, last_updated = now() WHERE id = :product_id AND stock_level >= :quantity RETURNING id, price) INSERT INTO orders (product_id, customer_id, quantity, total_amount, order_status, payment_method) SELECT id, NULL, :quantity, round(price * :quantity, 2), :pending, :method FROM reserved RETURNING id, product_id, customer_id, quantity, total_amount, order_status, payment_method, payment_reference, failure_reason, order_time, updated_at, public_id \gset order_
UPDATE orders SET order_status = :completed, payment_reference = :reference, updated_at = now() WHERE id = :order_id AND order_status = :pending RETURNING id, product_id, customer_id, quantity, total_amount, order_status, payment_method, payment_reference, failure_reason, order_time, updated_at, public_id;
