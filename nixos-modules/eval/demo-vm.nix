# nixos-eval case (host mode, with virtualisation.vmVariant): the VM of `nix run` (flake.nix's demoVm).
{
  imports = [
    (import ./flake.nix).default
    ../demo-vm.nix
  ];
}
