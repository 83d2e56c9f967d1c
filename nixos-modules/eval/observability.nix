# nixos-eval case: the observability module alone, in the fast profile.
{
  imports = [../observability.nix];
  services.alertlab.observability = {
    enable = true;
    profile = "fast";
    grafana = {
      adminPasswordFile = "/run/secrets/grafana-admin-password";
      secretKeyFile = "/run/secrets/grafana-secret-key";
      postgresPasswordFile = "/run/secrets/grafana-ro-password";
      openFirewall = true;
    };
  };
}
