-- Appended to every script: one machine-readable line for shop-bench (latencies in µs).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "SHOP_BENCH requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f non_2xx=%.0f socket_errors=%.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
