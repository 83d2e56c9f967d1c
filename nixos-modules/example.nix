# nixosConfigurations.example: what a NixOS host needs to run the lab with
# `imports = [ alertlab.nixosModules.default ];`. Secrets are files outside the store
# (e.g. from sops-nix or agenix), readable by root.
{
  networking.hostName = "alertlab-example";
  system.stateVersion = "26.05";

  # Stand-ins for the host's own hardware configuration.
  boot.loader.grub.device = "/dev/sda";
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };

  services.alertlab = {
    shop = {
      enable = true;
      grafanaReadOnly.passwordFile = "/run/secrets/alertlab/grafana-ro-password";
      # Fault injection stays off on a deployed host unless you want to break it:
      # faults.enable = true;
      # faults.tokenFile = "/run/secrets/alertlab/fault-token";
      webhookSink.enable = true;
    };
    observability = {
      enable = true;
      grafana = {
        adminPasswordFile = "/run/secrets/alertlab/grafana-admin-password";
        secretKeyFile = "/run/secrets/alertlab/grafana-secret-key";
        # Reach Grafana from other hosts (put a TLS proxy in front of it in earnest):
        # listenAddress = "0.0.0.0";
        # openFirewall = true;
      };
    };
  };
}
