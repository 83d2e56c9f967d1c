# Stand-ins for the flake's own packages, for the nixos-eval harness beside the repository
# (`shared/tools/nixos-eval`, its `--overlay`), which evaluates the modules without nixpkgs:
# derivations that evaluate but never build.
final: _prev: {
  alertlab = final.nixosEval.mkPkg "alertlab" {
    version = "0.1.0";
    mainProgram = "labctl";
  };
  promtail = final.nixosEval.mkPkg "promtail" {version = "3.5.0";};
}
