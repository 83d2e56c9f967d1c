# nixos-eval case: the whole lab on a host that serves other hosts: the services on every
# address for one network only (IPAddressAllow), the fault API answering this host's FQDN and
# static address, and the sink token given as a file rather than generated.
{
  imports = [../default.nix];
  networking = {
    hostName = "shop";
    domain = "lab.example";
    interfaces.eth1.ipv4.addresses = [
      {
        address = "192.168.1.2";
        prefixLength = 24;
      }
    ];
  };
  services.alertlab = {
    lab.enable = true;
    shop = {
      listenAddress = "0.0.0.0";
      openFirewall = true;
      allowedNetworks = ["192.168.1.0/24"];
      webhookSink.tokenFile = "/run/secrets/alertlab-sink-token";
    };
  };
}
