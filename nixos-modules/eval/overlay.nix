# Stand-ins for the flake's own packages, for ../shared/tools/nixos-eval (`--overlay`),
# which evaluates the modules without nixpkgs: derivations that evaluate but never build.
final: _prev: {
  alertlab = final.nixosEval.mkPkg "alertlab" {
    version = "0.1.0";
    mainProgram = "labctl";
  };
  promtail = final.nixosEval.mkPkg "promtail" {version = "3.5.0";};
}
