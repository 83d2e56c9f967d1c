# nixos-eval case: nixosConfigurations.example (the flake adds nixosModules.default).
{
  imports = [
    ../default.nix
    ../example.nix
  ];
}
