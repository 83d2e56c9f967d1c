-- POST /orders: one unit of a product drawn uniformly from the 24 seeded products, paid by
-- card — the transaction ../pgbench/order.sql runs directly against PostgreSQL.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  local body = '{"product_id": ' .. math.random(1, 24) .. ', "quantity": 1, "payment_method": "card"}'
  return wrk.format(nil, "/orders", nil, body)
end
