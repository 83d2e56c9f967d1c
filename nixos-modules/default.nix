# All of alertlab's NixOS modules: the shop, the observability stack and the lab profile.
# Outside the flake, give the packages yourself (services.alertlab.shop.package,
# services.alertlab.observability.promtail.package); the flake's nixosModules do it.
{
  imports = [
    ./shop.nix
    ./observability.nix
    ./lab.nix
  ];
}
