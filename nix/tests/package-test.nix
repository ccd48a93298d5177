# Tests of ../package.nix against stand-ins for nixpkgs (./package-stub.nix).
let
  h = import ./harness.nix;
  l = import ../lib.nix;
  v = import ../vendor.nix;
  inherit (h) case fails;
  pkg = import ./package-stub.nix { version = "0-unstable-abc1234"; };
  goMod = builtins.readFile ../../go.mod;
  goSum = builtins.readFile ../../go.sum;
in
h.run "package.nix (stub evaluation)" [
  (case "builds cmd/panther only" pkg.subPackages [ "cmd/panther" ])
  (case "version in ldflags" pkg.ldflags [
    "-s"
    "-w"
    "-X main.version=0-unstable-abc1234"
  ])
  (case "pure Go" pkg.env.CGO_ENABLED 0)
  (case "module cache, hash from vendor.nix" [
    pkg.proxyVendor
    pkg.vendorHash
  ] [ true v.vendorHash ])
  (case "vendorHash is an SRI sha256" (builtins.match "sha256-[A-Za-z0-9+/]{43}=" v.vendorHash != null) true)
  (case "tests run, short, with the tool-needing ones unset" {
    inherit (pkg) doCheck checkFlags;
    unsets = h.contains "unset PANTHER_TEST_REQUIRE_POSTGRES PANTHER_TEST_REQUIRE_BROWSER PANTHER_TEST_REQUIRE_NPM PANTHER_TEST_REQUIRE_TMUX" pkg.preCheck;
    everyPackage = h.contains "subPackages=$(go list" pkg.preCheck;
  } {
    doCheck = true;
    checkFlags = [
      "-short"
      "-skip=^TestSSHWithOpenSSHInTmux$"
    ];
    unsets = true;
    everyPackage = true;
  })
  (case "install check runs the binary" (h.contains "$out/bin/panther --version" pkg.installCheckPhase) true)
  (case "source is filtered into the store" (builtins.match "/nix/store/[a-z0-9]{32}-panther-source" "${pkg.src}" != null) true)
  (case "a Go older than go.mod's is refused" (fails (import ./package-stub.nix { goVersion = "1.25.4"; }).pname) true)
  (case "a newer Go is fine" (import ./package-stub.nix { goVersion = "1.27.0"; }).pname "panther")
  (case "go.mod's Go version" (builtins.compareVersions (l.goDirective goMod) "1.21" >= 0) true)
]
