# The config.toml the module writes for each example host (./examples.nix), as TOML text, for
# nix-check.sh to hand to panther. Evaluation fails if an example fails an assertion.
let
  s = import ./stub.nix;
  t = import ./toml.nix;
  examples = import ./examples.nix;
  render =
    name: host:
    let
      r = s.evalModule {
        values = host.services.panther;
        # A local database's unit names PostgreSQL's package, which the stub does not have.
        services = {
          postgresql.package = s.fakeDrv "postgresql";
        }
        // removeAttrs host.services [ "panther" ];
      };
      failed = map (a: a.message) (builtins.filter (a: !a.assertion) r.config.assertions);
    in
    if failed != [ ] then
      throw "example ${name}: ${builtins.concatStringsSep "; " failed}"
    else
      t.toTOML r.config.environment.etc."panther/config.toml".source.value;
in
builtins.mapAttrs render examples
