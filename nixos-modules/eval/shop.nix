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
    traffic.enable = true;
    webhookSink.enable = true;
  };
}
