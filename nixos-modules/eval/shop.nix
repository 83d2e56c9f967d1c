# nixos-eval case: the shop module alone, everything on.
{
  imports = [../shop.nix];
  services.alertlab.shop = {
    enable = true;
    openFirewall = true;
    faults = {
      enable = true;
      tokenFile = "/run/secrets/fault-token";
    };
    grafanaReadOnly.passwordFile = "/run/secrets/grafana-ro-password";
    # Given, not generated (the lab eval case covers the generated one).
    paymentTokenFile = "/run/secrets/payment-token";
    trustedProxies = 2;
    traffic.enable = true;
    webhookSink.enable = true;
  };
}
