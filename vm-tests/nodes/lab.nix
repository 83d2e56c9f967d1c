# The whole lab on one test VM (vm-tests/alerts.nix, hardening.nix): the lab profile with its
# secrets generated at boot, in the fast timing profile. Imported with the flake's
# nixosModules.default (nixos-modules/eval/vm-alerts.nix and vm-hardening.nix evaluate it
# with nixos-eval).
{
  config,
  pkgs,
  ...
}: {
  services.alertlab = {
    lab.enable = true;
    observability.profile = "fast";
  };

  # Grafana, Loki, Prometheus, PostgreSQL, Promtail, Mailpit, four services, traffic and
  # labctl verify: an estimated 2 GiB in use (not measured), the rest is headroom.
  virtualisation = {
    memorySize = 4096;
    cores = 2;
    diskSize = 4096;
  };

  # labctl (in the shop's package), curl for the script's HTTP calls.
  environment.systemPackages = [config.services.alertlab.shop.package pkgs.curl];
}
