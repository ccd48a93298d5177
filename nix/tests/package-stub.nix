# ../package.nix called with stand-ins for nixpkgs' lib and buildGoModule (which returns its
# arguments, see ./stub.nix), so the offline checks can read what the package would be built with.
# goVersion is the Go the stand-in buildGoModule claims to use.
{
  goVersion ? "1.26.8",
  version ? "0-unstable-nixcheck",
}:
let
  s = import ./stub.nix;
in
import ../package.nix {
  inherit (s) lib;
  buildGoModule = s.buildGoModuleWith goVersion;
  inherit version;
}
