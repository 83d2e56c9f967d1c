{
  description = "alertlab: a reproducible Grafana alerting lab (four Rust shop services, PostgreSQL, Prometheus, Loki, Promtail, Grafana)";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
    # Promtail left nixpkgs on 2026-03-30 (package and module); nixos-25.11 is used for
    # that one package only.
    nixpkgs-promtail.url = "github:NixOS/nixpkgs/nixos-25.11";
  };

  outputs = {
    self,
    nixpkgs,
    crane,
    nixpkgs-promtail,
  }: let
    inherit (nixpkgs) lib;
    fs = lib.fileset;

    systems = ["x86_64-linux" "aarch64-linux"];
    forAllSystems = lib.genAttrs systems;

    # The shop's services, ports and timing profiles, and the builtins-only functions
    # over them (also evaluated by the checks in .ci/run).
    shop = import ./nixos-modules/lib;
    binaries = map (service: service.binary) shop.services ++ ["labctl"];
    version = (builtins.fromTOML (builtins.readFile ./Cargo.toml)).workspace.package.version;

    # Crate directories, for the non-Rust files some crates need at build or test time.
    crateDirs = map (name: ./services + "/${name}") (
      builtins.attrNames (lib.filterAttrs (_: type: type == "directory") (builtins.readDir ./services))
    );

    perSystem = system: let
      pkgs = nixpkgs.legacyPackages.${system};
      craneLib = crane.mkLib pkgs;
      # The PostgreSQL major the NixOS module runs; the tests start a throwaway one.
      postgresql = pkgs.postgresql_17;

      # Rust sources and manifests, plus what the build and the tests read:
      # SQL migrations (embedded at build time), Grafana JSON and runbooks (linted by
      # the workspace tests), test fixtures, and the Nix data the tests compare with.
      src = fs.toSource {
        root = ./.;
        fileset = fs.unions (
          [
            (craneLib.fileset.commonCargoSources ./.)
            (fs.maybeMissing ./grafana)
            (fs.maybeMissing ./docs/runbooks)
            ./nixos-modules/lib
          ]
          ++ lib.concatMap (dir: [
            (fs.maybeMissing (dir + "/migrations"))
            (fs.maybeMissing (dir + "/tests/fixtures"))
          ])
          crateDirs
        );
      };

      commonArgs = {
        inherit src version;
        pname = "alertlab";
        strictDeps = true;
        nativeBuildInputs = [pkgs.pkg-config];
        buildInputs = [pkgs.libpq];
      };

      # One dependency build for the whole workspace, reused by everything below.
      cargoArtifacts = craneLib.buildDepsOnly commonArgs;

      alertlab = craneLib.buildPackage (commonArgs
        // {
          inherit cargoArtifacts;
          # The tests run once, in checks.nextest.
          doCheck = false;
          # xtask and shop-bench are repository tools, not part of the lab.
          postInstall = ''
            rm -f $out/bin/xtask $out/bin/shop-bench
          '';
          meta = {
            description = "alertlab shop services (shop-api, shop-frontend, shop-payment, shop-inventory) and labctl";
            mainProgram = "labctl";
          };
        });

      # One package per binary (`nix run .#labctl`, `lib.getExe`), sharing the build.
      binaryPackage = name:
        pkgs.runCommand name {
          meta = {
            description = "${name} from alertlab";
            mainProgram = name;
          };
        } ''
          mkdir -p $out/bin
          ln -s ${alertlab}/bin/${name} $out/bin/${name}
        '';
      binaryPackages = lib.genAttrs binaries binaryPackage;

      # Every Nix file of the repository, for the formatting and dead-code checks.
      nixSources = fs.toSource {
        root = ./.;
        fileset = fs.fileFilter (file: file.hasExt "nix") ./.;
      };

      # nix-instantiate needs a store and state directories of its own inside the build
      # sandbox (the same setup nixpkgs' lib tests use).
      sandboxNixEval = ''
        export TEST_ROOT="$TMPDIR/nix-test"
        export HOME="$TEST_ROOT/home"
        export NIX_BUILD_HOOK=
        export NIX_CONF_DIR="$TEST_ROOT/etc"
        export NIX_LOCALSTATE_DIR="$TEST_ROOT/var"
        export NIX_LOG_DIR="$TEST_ROOT/var/log/nix"
        export NIX_STATE_DIR="$TEST_ROOT/var/nix"
        export NIX_STORE_DIR="$TEST_ROOT/store"
        export PAGER=cat
        mkdir -p "$HOME"
        nix-store --init
      '';

      prometheusConfig = profile:
        pkgs.writeText "prometheus-${profile}.yml" (builtins.toJSON {
          global = {
            scrape_interval = shop.profiles.${profile}.scrapeInterval;
            evaluation_interval = shop.profiles.${profile}.ruleEvaluationInterval;
          };
          scrape_configs = shop.prometheusScrapeConfigs {
            inherit (shop) services;
            inherit (shop.profiles.${profile}) scrapeInterval;
          };
        });

      # The NixOS VM tests (vm-tests/), on x86_64-linux only: they need KVM on the builder
      # (the run derivations require the `kvm` and `nixos-test` system features), and their
      # timings were estimated there.
      vmTests = lib.optionalAttrs (system == "x86_64-linux") {
        vm-alerts = import ./vm-tests/alerts.nix {inherit pkgs self;};
        vm-alerts-alloy = import ./vm-tests/alerts-alloy.nix {inherit pkgs self;};
        vm-hardening = import ./vm-tests/hardening.nix {inherit pkgs self;};
        vm-two-hosts = import ./vm-tests/two-hosts.nix {inherit pkgs self;};
      };

      # `nix run`: the lab in a local VM (nixos-modules/demo-vm.nix, demo-vm-app.nix);
      # `nix run .#alloy`: the same with Grafana Alloy shipping the logs (demo-vm-alloy.nix).
      demoVm = module:
        (nixpkgs.lib.nixosSystem {
          modules = [
            self.nixosModules.default
            module
            {nixpkgs.hostPlatform = system;}
          ];
        })
        .config
        .system
        .build
        .vm;
      demoApp = shipper: module:
        import ./nixos-modules/demo-vm-app.nix {
          inherit pkgs shipper;
          vm = demoVm module;
        };

      # `nix run .#labctl`: labctl aimed at the `nix run` VM (nixos-modules/demo-vm-labctl.nix).
      labctlApp = import ./nixos-modules/demo-vm-labctl.nix {
        inherit pkgs;
        labctl = binaryPackages.labctl;
      };
    in {
      packages =
        binaryPackages
        // {
          inherit alertlab;
          promtail = nixpkgs-promtail.legacyPackages.${system}.promtail;
          default = alertlab;
        };

      checks =
        {
          inherit alertlab;

          clippy = craneLib.cargoClippy (commonArgs
            // {
              inherit cargoArtifacts;
              cargoClippyExtraArgs = "--all-targets -- --deny warnings";
            });

          fmt = craneLib.cargoFmt {
            inherit src version;
            pname = "alertlab";
          };

          # The workspace tests; the DB-backed ones start their own PostgreSQL from
          # `initdb`/`pg_ctl` on PATH, the stack test runs a real Prometheus with the scrape
          # configuration evaluated by nix-instantiate, and labctl's store-secrets audit walks
          # a throwaway Nix store of its own. xtask's tests read files outside `src` (the VM
          # tests, the modules, the README) and need Python's pyflakes and mypy and
          # shellcheck: .ci/run runs them; under Nix the nix-fmt and deadnix checks below
          # repeat their formatting and dead-code checks and the NixOS test driver lints
          # and type-checks the VM test scripts. The Grafana lint has a check of its own.
          nextest = craneLib.cargoNextest (commonArgs
            // {
              inherit cargoArtifacts;
              nativeCheckInputs = [postgresql pkgs.prometheus pkgs.nix];
              preCheck = sandboxNixEval;
              cargoNextestExtraArgs = "--workspace --exclude xtask --exclude alertlab-grafana";
            });

          # Includes the tests that grafana/profile.nix and its Rust twin agree and that
          # Loki selectors use Promtail's labels (both evaluate Nix with nix-instantiate),
          # and that every SQL query runs on a throwaway PostgreSQL.
          grafana-lint = craneLib.cargoNextest (commonArgs
            // {
              inherit cargoArtifacts;
              pname = "alertlab-grafana-lint";
              nativeCheckInputs = [postgresql pkgs.nix];
              preCheck = sandboxNixEval;
              cargoNextestExtraArgs = "--package alertlab-grafana";
            });

          nix-fmt = pkgs.runCommand "alertlab-nix-fmt" {nativeBuildInputs = [pkgs.alejandra];} ''
            alejandra --check ${nixSources}
            touch $out
          '';

          deadnix = pkgs.runCommand "alertlab-deadnix" {nativeBuildInputs = [pkgs.deadnix];} ''
            deadnix --fail ${nixSources}
            touch $out
          '';

          prometheus-config = pkgs.runCommand "alertlab-prometheus-config" {nativeBuildInputs = [pkgs.prometheus.cli];} ''
            promtool check config ${prometheusConfig "demo"}
            promtool check config ${prometheusConfig "fast"}
            touch $out
          '';

          # The Alloy configuration the modules generate, checked by Alloy itself.
          alloy-config = pkgs.runCommand "alertlab-alloy-config" {} ''
            ${lib.getExe pkgs.grafana-alloy} validate ${pkgs.writeText "config.alloy" (shop.alloyConfig {
              inherit (shop) services;
              logDir = "/var/log/alertlab";
              lokiUrl = "http://127.0.0.1:3100";
            })}
            touch $out
          '';
        }
        // vmTests;

      devShell = craneLib.devShell {
        # libpq as a host input, so pkg-config finds it as in the build.
        inherit (commonArgs) buildInputs;
        packages = [
          pkgs.pkg-config
          pkgs.diesel-cli
          postgresql
          pkgs.prometheus
          pkgs.prometheus.cli
          pkgs.alejandra
          pkgs.deadnix
          pkgs.cargo-nextest
        ];
      };

      apps =
        lib.mapAttrs (name: package: {
          type = "app";
          program = lib.getExe package;
          meta.description = "${name} from alertlab";
        })
        binaryPackages
        // {
          labctl = {
            type = "app";
            program = lib.getExe labctlApp;
            meta.description = "labctl, aimed at the lab VM of `nix run` by default";
          };
          default = {
            type = "app";
            program = lib.getExe (demoApp "promtail" ./nixos-modules/demo-vm.nix);
            meta.description = "The alertlab lab in a local VM: Grafana on http://localhost:3000";
          };
          alloy = {
            type = "app";
            program = lib.getExe (demoApp "alloy" ./nixos-modules/demo-vm-alloy.nix);
            meta.description = "The alertlab lab in a local VM with Grafana Alloy shipping the logs: Grafana on http://localhost:3000";
          };
        };

      formatter = pkgs.alejandra;
    };

    outputs = forAllSystems perSystem;

    # The modules with the flake's packages as their package defaults (the plain modules in
    # nixos-modules/ take them from `pkgs`, where nixos-26.05 has neither).
    modules = import ./nixos-modules/flake-modules.nix {
      packagesFor = pkgs: self.packages.${pkgs.stdenv.hostPlatform.system};
    };
  in {
    packages = lib.mapAttrs (_: out: out.packages) outputs;
    checks = lib.mapAttrs (_: out: out.checks) outputs;
    devShells = lib.mapAttrs (_: out: {default = out.devShell;}) outputs;
    apps = lib.mapAttrs (_: out: out.apps) outputs;
    formatter = lib.mapAttrs (_: out: out.formatter) outputs;

    nixosModules = {
      inherit (modules) shop observability default;
    };

    nixosConfigurations.example = nixpkgs.lib.nixosSystem {
      modules = [
        self.nixosModules.default
        ./nixos-modules/example.nix
        {nixpkgs.hostPlatform = "x86_64-linux";}
      ];
    };
  };
}
