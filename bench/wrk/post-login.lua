-- POST /login with a wrong password for one of the nine seeded customers in turn: a
-- brute-force or credential-stuffing flood. Every answer is a 401 (checked) or a 429 (refused
-- by the login gate); shop-bench reads their shares from the API's own /metrics.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local customers = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"}
local n = 0

request = function()
  n = n + 1
  local body = '{"email": "' .. customers[n % #customers + 1] .. '@example.com", "password": "guess-' .. n .. '"}'
  return wrk.format(nil, "/login", nil, body)
end
