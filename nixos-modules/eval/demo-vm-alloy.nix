# nixos-eval case (host mode, with virtualisation.vmVariant): the VM of `nix run .#alloy`
# (flake.nix's demoVm of demo-vm-alloy.nix).
{
  imports = [
    (import ./flake.nix).default
    ../demo-vm-alloy.nix
  ];
}
