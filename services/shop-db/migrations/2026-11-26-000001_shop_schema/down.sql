DROP VIEW order_stats_hourly;
DROP VIEW low_stock_products;
DROP TABLE login_attempts;
DROP TABLE orders;
DROP TABLE customers;
DROP TABLE products;
