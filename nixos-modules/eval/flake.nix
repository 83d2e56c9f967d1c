# The flake's nixosModules as nixos-eval evaluates them: nixos-modules/flake-modules.nix
# (the file flake.nix imports) with the stand-in packages of overlay.nix.
import ../flake-modules.nix {
  packagesFor = pkgs: {inherit (pkgs) alertlab promtail;};
}
