# nixos-eval case: nixosConfigurations.example (nixosModules.default and example.nix).
{
  imports = [
    (import ./flake.nix).default
    ../example.nix
  ];
}
