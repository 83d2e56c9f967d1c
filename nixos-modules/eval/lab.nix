# nixos-eval case: the lab profile with generated secrets, demo timing.
{
  imports = [../default.nix];
  services.alertlab.lab.enable = true;
}
