# nixos-eval case: the flake's nixosModules.default, .shop and .observability imported
# together (a host importing them through one flake or two): each applies once.
let
  modules = import ./flake.nix;
in {
  imports = [modules.default modules.shop modules.observability];
  services.alertlab.lab.enable = true;
}
