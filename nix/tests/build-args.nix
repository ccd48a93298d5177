# What scripts/nix-check.sh needs to build panther as nix/package.nix would, without Nix: the files
# the package's source filter keeps (relative paths) and the Go build flags.
let
  l = import ../lib.nix;
  pkg = import ./package-stub.nix { };
  root = toString ../..;
  walk =
    dir: rel:
    builtins.concatLists (
      l.mapAttrsToList (
        name: type:
        let
          path = "${dir}/${name}";
          relPath = if rel == "" then name else "${rel}/${name}";
        in
        if !(l.sourceFilter root path type) then
          [ ]
        else if type == "directory" then
          walk path relPath
        else
          [ relPath ]
      ) (builtins.readDir dir)
    );
in
{
  inherit (pkg)
    ldflags
    subPackages
    tags
    version
    ;
  cgo = toString pkg.env.CGO_ENABLED;
  files = walk root "";
}
