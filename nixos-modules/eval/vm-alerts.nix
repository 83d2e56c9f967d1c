# nixos-eval case (--mode vm): the node of vm-tests/alerts.nix, with nixosModules.default as the flake gives it.
{
  imports = [
    (import ./flake.nix).default
    ../../vm-tests/nodes/lab.nix
  ];
}
