{
  description = "panther: documentation crawler, knowledge base with cited search, and agent server";

  # nixpkgs only. No flake.lock is committed from the development machines (they cannot fetch
  # nixpkgs); the first `nix flake lock` on a machine with network writes it.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      linuxSystems = builtins.filter (lib.hasSuffix "-linux") systems;
      forSystems = ss: f: lib.genAttrs ss (system: f nixpkgs.legacyPackages.${system});

      version = "0-unstable-${self.shortRev or self.dirtyShortRev or "dirty"}";

      # go.mod asks for Go 1.26: take that toolchain where nixpkgs' default is older.
      buildGoModuleFor = pkgs: pkgs.buildGo126Module or pkgs.buildGoModule;
      pantherFor =
        pkgs:
        pkgs.callPackage ./nix/package.nix {
          buildGoModule = buildGoModuleFor pkgs;
          inherit version;
        };
    in
    {
      packages = forSystems systems (pkgs: rec {
        panther = pantherFor pkgs;
        default = panther;
      });

      overlays.default = final: _prev: { panther = pantherFor final; };

      nixosModules.panther =
        { pkgs, lib, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.panther.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };
      nixosModules.default = self.nixosModules.panther;

      checks = forSystems linuxSystems (
        pkgs:
        let
          tests = import ./nix/tests/nixos.nix {
            inherit pkgs nixpkgs;
            module = self.nixosModules.default;
            package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          };
        in
        {
          package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          # The offline tests (what scripts/nix-check.sh runs) as checks, so `nix flake check` runs them too.
          offline = pkgs.runCommand "panther-nix-offline-tests" { } ''
            echo ${lib.escapeShellArg (import ./nix/tests/lib-test.nix)} >>$out
            echo ${lib.escapeShellArg (import ./nix/tests/module-test.nix)} >>$out
            echo ${lib.escapeShellArg (import ./nix/tests/package-test.nix)} >>$out
          '';
          # The module evaluated by the real module system for each example host, its config file
          # loaded by the real panther.
          module-basic = tests.evalCheck "basic";
          module-tailnet = tests.evalCheck "tailnet";
          module-complete = tests.evalCheck "complete";
          module-worker = tests.evalCheck "worker";
          module-calendars = tests.calendarCheck "complete";
        }
        // lib.optionalAttrs (pkgs.stdenv.hostPlatform.system == "x86_64-linux") {
          # A VM running the service (needs KVM).
          vm = tests.vm;
        }
      );

      devShells = forSystems systems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pkgs.go_1_26 or pkgs.go)
            pkgs.gopls
            pkgs.jq
          ];
        };
      });
    };
}
