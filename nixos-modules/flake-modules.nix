# The flake's `nixosModules`: the modules of this directory, each with a module that makes
# the flake's own package its package default. flake.nix calls this with its packages, the
# nixos-eval case eval/flake-modules.nix with stand-ins, so both evaluate this one file.
#
# Every module here has a `key`: the module system applies a module once per key (a path's
# key is the path). Without one, a host importing `default` and `shop` (or one of them
# through two flakes) applied the package default twice, and the option was "defined
# multiple times". Anonymous modules imported by a keyed one get keys derived from it.
{
  # pkgs -> { alertlab, promtail }: the packages for a host's pkgs.
  packagesFor,
}: let
  packageDefault = name: option: package: {
    key = "alertlab#package-default-${name}";
    imports = [
      ({
        lib,
        pkgs,
        ...
      }:
        lib.setAttrByPath option (lib.mkDefault (packagesFor pkgs).${package}))
    ];
  };
  shopPackage = packageDefault "shop" ["services" "alertlab" "shop" "package"] "alertlab";
  promtailPackage = packageDefault "promtail" ["services" "alertlab" "observability" "promtail" "package"] "promtail";
in {
  shop = {
    key = "alertlab#nixosModules.shop";
    imports = [./shop.nix shopPackage];
  };
  observability = {
    key = "alertlab#nixosModules.observability";
    imports = [./observability.nix promtailPackage];
  };
  # Both, and the lab profile (`services.alertlab.lab.enable`).
  default = {
    key = "alertlab#nixosModules.default";
    imports = [./default.nix shopPackage promtailPackage];
  };
}
