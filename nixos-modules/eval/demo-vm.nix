# nixos-eval case (host mode, with virtualisation.vmVariant): the VM of `nix run`.
{
  imports = [
    ../default.nix
    ../demo-vm.nix
  ];
}
