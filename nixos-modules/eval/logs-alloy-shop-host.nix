# nixos-eval case: the shop's host of a two-host layout with Grafana Alloy: no stack here, Alloy
# pushes to the Loki on the monitoring host.
{
  imports = [
    ../shop.nix
    ../observability.nix
  ];
  services.alertlab = {
    shop = {
      enable = true;
      grafanaReadOnly.passwordFile = "/run/secrets/grafana-ro-password";
    };
    observability = {
      logShipper = "alloy";
      alloy.lokiUrl = "http://monitor:3100";
    };
  };
}
