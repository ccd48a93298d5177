# Tests of ../../flake.nix's wiring with a stand-in nixpkgs (./stub.nix): its inputs, the outputs it
# offers, the package each system gets and what the NixOS module sets. `nix flake check` (with
# network) evaluates and builds it for real.
let
  h = import ./harness.nix;
  s = import ./stub.nix;
  inherit (h) case;
  flake = import ../../flake.nix;

  pkgsFor = system: {
    inherit (s) lib;
    stdenv.hostPlatform.system = system;
    buildGoModule = s.buildGoModuleWith "1.24.0";
    buildGo126Module = s.buildGoModuleWith "1.26.8";
    callPackage = f: args: import f ({ inherit (s) lib; buildGoModule = s.buildGoModuleWith "1.24.0"; } // args);
  };
  nixpkgs = {
    inherit (s) lib;
    legacyPackages = s.lib.genAttrs [
      "x86_64-linux"
      "aarch64-linux"
      "x86_64-darwin"
      "aarch64-darwin"
    ] pkgsFor;
  };
  outputs = flake.outputs {
    self = outputs // {
      shortRev = "abc1234";
    };
    inherit nixpkgs;
  };
  linuxPackage = outputs.packages.x86_64-linux.default;
  nixosModule = outputs.nixosModules.default {
    pkgs = pkgsFor "x86_64-linux";
    inherit (s) lib;
  };
in
h.run "flake.nix (stub evaluation)" [
  (case "inputs: nixpkgs only" (builtins.attrNames flake.inputs) [ "nixpkgs" ])
  (case "outputs" (builtins.attrNames outputs) [
    "checks"
    "devShells"
    "nixosModules"
    "overlays"
    "packages"
  ])
  (case "packages for every system" (builtins.attrNames outputs.packages) [
    "aarch64-darwin"
    "aarch64-linux"
    "x86_64-darwin"
    "x86_64-linux"
  ])
  (case "checks on Linux only, the VM on x86_64" (builtins.mapAttrs (_: builtins.attrNames) outputs.checks) {
    aarch64-linux = [
      "module-basic"
      "module-calendars"
      "module-complete"
      "module-tailnet"
      "module-worker"
      "offline"
      "package"
    ];
    x86_64-linux = [
      "module-basic"
      "module-calendars"
      "module-complete"
      "module-tailnet"
      "module-worker"
      "offline"
      "package"
      "vm"
    ];
  })
  (case "the package: Go 1.26 toolchain, version from the revision" [
    linuxPackage.pname
    linuxPackage.version
    linuxPackage.passthru.go.version
  ] [ "panther" "0-unstable-abc1234" "1.26.8" ])
  (case "nixosModules.default imports the module and defaults its package to the flake's" [
    nixosModule.imports
    nixosModule.services.panther.package.content.version
  ] [ [ ../module.nix ] "0-unstable-abc1234" ])
  (case "overlay" (outputs.overlays.default (pkgsFor "x86_64-linux") { }).panther.pname "panther")
]
