# Prometheus scrape configuration for the shop, from the list of services in shop.json.
#
# Returns a list that fits nixpkgs' strictly typed `services.prometheus.scrapeConfigs`
# and, as `scrape_configs` of a prometheus.yml, passes `promtool check config`:
# one job `shop-<name>` per service at `host` (target label `service = "<name>"`) and a job
# `prometheus` for Prometheus itself, on 127.0.0.1. Only builtins are used.
{
  services,
  scrapeInterval,
  host ? "127.0.0.1",
  prometheusPort ? 9090,
}: let
  job = name: target: labels: {
    job_name = name;
    scrape_interval = scrapeInterval;
    metrics_path = "/metrics";
    static_configs = [
      {
        targets = [target];
        inherit labels;
      }
    ];
  };
in
  map (service: job "shop-${service.name}" "${host}:${toString service.port}" {service = service.name;}) services
  ++ [(job "prometheus" "127.0.0.1:${toString prometheusPort}" {})]
