-- The API's GET /products/:id query (services/shop-api/src/store/products.rs), as diesel
-- sends it: all columns of one product by primary key, the id and the limit as parameters.
\set id random(1, 24)
\set limit 1
SELECT products.id, products.name, products.description, products.price,
       products.stock_level, products.low_stock_threshold, products.last_updated
FROM products WHERE products.id = :id LIMIT :limit;
