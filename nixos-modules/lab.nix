# The lab profile: the whole lab on one host, ready to break. Enables the shop with
# fault injection, traffic and the webhook sink, the observability stack, and (unless
# the secret files are given) generates the secrets on first boot under
# /var/lib/alertlab-secrets (root-only; `cat` them there, e.g. Grafana's admin password).
{
  config,
  lib,
  ...
}: let
  data = import ./lib;
  cfg = config.services.alertlab.lab;
  secretsDir = "/var/lib/alertlab-secrets";
  secrets =
    ["grafana-admin-password" "grafana-secret-key" "grafana-ro-password" "fault-token"]
    ++ lib.optional cfg.scenarioControl.enable "scenario-token";
  secret = name: "${secretsDir}/${name}";
  generated = lib.mkIf cfg.generateSecrets;
  consumers =
    ["grafana.service" "alertlab-grafana-ro.service" "shop-api.service" "shop-frontend.service" "shop-payment.service" "shop-inventory.service"]
    ++ lib.optional cfg.scenarioControl.enable "alertlab-scenarios.service";
in {
  imports = [./shop.nix ./observability.nix ./scenario-control.nix];

  options.services.alertlab.lab = {
    enable = lib.mkEnableOption "the whole alertlab lab on this host: shop with fault injection and traffic, webhook sink, observability stack";

    generateSecrets = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Generate random secrets on first boot under ${secretsDir} and use them as the
        defaults of the secret file options. Turn off to give every file yourself.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    services.alertlab.shop = {
      enable = true;
      faults = {
        enable = lib.mkDefault true;
        tokenFile = generated (lib.mkDefault (secret "fault-token"));
      };
      grafanaReadOnly.passwordFile = generated (lib.mkDefault (secret "grafana-ro-password"));
      traffic.enable = lib.mkDefault true;
      webhookSink.enable = lib.mkDefault true;
    };

    services.alertlab.lab.scenarioControl.tokenFile = generated (lib.mkDefault (secret "scenario-token"));

    services.alertlab.observability = {
      enable = true;
      grafana = {
        adminPasswordFile = generated (lib.mkDefault (secret "grafana-admin-password"));
        secretKeyFile = generated (lib.mkDefault (secret "grafana-secret-key"));
      };
    };

    systemd.services = lib.mkIf cfg.generateSecrets {
      alertlab-secrets = {
        description = "alertlab lab secrets (generated once)";
        wantedBy = ["multi-user.target"];
        # Every unit that reads one of the secrets.
        before = consumers;
        requiredBy = consumers;
        # It runs as root and only writes random bytes to its own directory: no network, no
        # devices but the pseudo ones (/dev/urandom), no other writable path, no capabilities
        # outside its user namespace. Not RemoveIPC: as root it would touch every root process'
        # IPC objects.
        serviceConfig =
          data.unitHardening.withoutIPCRemoval
          // data.unitHardening.noNetwork
          # MemoryMax and TasksMax, with the reasons: nixos-modules/lib/unit-limits.json.
          // data.unitLimits.alertlab-secrets.serviceConfig
          // {
            Type = "oneshot";
            RemainAfterExit = true;
            StateDirectory = "alertlab-secrets";
            StateDirectoryMode = "0700";
            UMask = "0077";
            RestrictAddressFamilies = "none";
          };
        script =
          lib.concatMapStrings (name: ''
            if [ ! -s ${secret name} ]; then
              head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32 > ${secret name}
            fi
          '')
          secrets;
      };
    };
  };
}
