-- GET /products/:id with a product id drawn uniformly from the 24 seeded products, like
-- pgbench's `\set id random(1, 24)` in ../pgbench/catalog.sql.
request = function()
  return wrk.format("GET", "/products/" .. math.random(1, 24))
end
