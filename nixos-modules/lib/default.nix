# The shop's data and the builtins-only functions over it, in one attribute set.
# Only `builtins` are used, so `nix-instantiate --eval --strict --json` evaluates
# everything here without nixpkgs.
let
  shop = builtins.fromJSON (builtins.readFile ./shop.json);
in
  shop
  // {
    adminAllowedHosts = import ./admin-allowed-hosts.nix;
    prometheusScrapeConfigs = import ./prometheus-scrape-configs.nix;
    promtailConfig = args: import ./promtail-config.nix ({inherit (shop) logShipping;} // args);
    alloyConfig = args: import ./alloy-config.nix ({inherit (shop) logShipping;} // args);
    unitHardening = import ./unit-hardening.nix;
    unitLimits = import ./unit-limits.nix;
  }
