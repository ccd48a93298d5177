# The panther binary. callPackage it with a buildGoModule whose Go is at least go.mod's (the flake
# passes buildGo126Module): buildGoModule sets GOTOOLCHAIN=local, so it cannot fetch a newer Go.
{
  lib,
  buildGoModule,
  # The flake passes 0-unstable-<git revision>; `panther --version` prints it.
  version ? "0-unstable",
  # Go build tags, e.g. [ "tsnet" ] for the embedded Tailscale node.
  tags ? [ ],
}:
let
  pantherLib = import ./lib.nix;
  root = ../.;
  goVersion = pantherLib.goDirective (builtins.readFile ../go.mod);

  # vendorHash lives in ./vendor.nix, written by ./update-vendor-hash.sh whenever go.mod or go.sum
  # change (scripts/nix-check.sh fails until it is). A `nix build` that reports "hash mismatch …
  # got: sha256-…" means it is stale: put the reported hash there.
  inherit (import ./vendor.nix) vendorHash;

  package = buildGoModule {
    pname = "panther";
    inherit version tags vendorHash;

    src = builtins.path {
      path = root;
      name = "panther-source";
      filter = pantherLib.sourceFilter (toString root);
    };

    # The module cache rather than `go mod vendor`: vendoring keeps only the packages' own files
    # and has broken modules that embed or generate files elsewhere; the cache keeps whole modules.
    proxyVendor = true;
    subPackages = [ "cmd/panther" ];
    # Pure Go throughout (modernc.org/sqlite): a static binary with no C toolchain.
    env.CGO_ENABLED = 0;
    ldflags = [
      "-s"
      "-w"
      "-X main.version=${version}"
    ];

    # The tests of every package (not only subPackages, which buildGoModule would limit them to),
    # in the build sandbox: no network but loopback, no PostgreSQL, Chromium, npm or tmux. Tests
    # needing those skip unless their PANTHER_TEST_REQUIRE_* variable is set, so they are unset
    # here; -short skips those that build and run the panther binary end to end, or read the
    # PostgreSQL manual scripts/setup.sh downloads. CI runs the whole suite (scripts/test.sh).
    doCheck = true;
    checkFlags = [
      "-short"
      # Drives OpenSSH inside tmux; neither is in the sandbox (it would skip), and where a builder
      # has them on PATH its terminal is no tty.
      "-skip=^TestSSHWithOpenSSHInTmux$"
    ];
    preCheck = ''
      export HOME=$TMPDIR
      unset PANTHER_TEST_REQUIRE_POSTGRES PANTHER_TEST_REQUIRE_BROWSER PANTHER_TEST_REQUIRE_NPM PANTHER_TEST_REQUIRE_TMUX
      unset PANTHER_DB PANTHER_CONFIG PANTHER_EMBEDDER
      # e2e/ drives real MCP clients installed with npm.
      subPackages=$(go list -f '{{.Dir}}' ./... | sed -e "s,^$PWD\$,.," -e "s,^$PWD/,," | grep -v '^e2e/')
    '';
    # Back to the binary alone for the install phase.
    postCheck = ''
      subPackages="cmd/panther"
    '';
    doInstallCheck = true;
    installCheckPhase = ''
      runHook preInstallCheck
      $out/bin/panther --version | grep -F -- ${lib.escapeShellArg version}
      $out/bin/panther --help >/dev/null
      runHook postInstallCheck
    '';

    meta = {
      description = "Documentation crawler, knowledge base with cited search, and agent server (HTTP, MCP, SSH)";
      mainProgram = "panther";
      platforms = lib.platforms.linux ++ lib.platforms.darwin;
    };
  };
  go = package.passthru.go or null;
in
assert lib.assertMsg (go == null || lib.versionAtLeast go.version goVersion)
  "panther's go.mod needs Go ${goVersion}, but buildGoModule uses Go ${go.version}: pass a newer one (e.g. buildGo126Module).";
package
