# A stand-in for the parts of nixpkgs (lib, pkgs, the module system) that ../module.nix uses, so
# that scripts/nix-check.sh can evaluate the module where nixpkgs cannot be fetched. It is not the
# module system: it takes each option's default, lays a test's values over them, checks them against
# the declared types, and resolves mkIf/mkMerge/mkDefault in the module's config. It cannot catch a
# misuse of a real lib function or a NixOS option that does not exist; the flake's checks
# (nix flake check, with nixpkgs) evaluate the same module for real.
let
  inherit (builtins)
    all
    attrNames
    concatStringsSep
    elem
    filter
    foldl'
    isAttrs
    isBool
    isFloat
    isInt
    isList
    isPath
    isString
    listToAttrs
    mapAttrs
    match
    substring
    ;

  hasPrefix = p: s: substring 0 (builtins.stringLength p) s == p;

  # A value stands for a derivation (package, generated file) when it has an outPath.
  isDrv = v: isAttrs v && v ? outPath;

  mkType =
    name: check:
    {
      _type = "type";
      inherit name check;
      fill = _: v: v;
    };

  # Fills in an option set's defaults under the test's values and type-checks the result. `where`
  # names the option in errors.
  fillOptions =
    where: options: values:
    let
      unknown = filter (k: !(options ? ${k})) (attrNames values);
    in
    if unknown != [ ] then
      throw "stub: ${where}: no such option: ${concatStringsSep ", " unknown}"
    else
      mapAttrs (
        name: opt:
        let
          path = "${where}.${name}";
        in
        if opt._type or null != "option" then
          fillOptions path opt (values.${name} or { })
        else
          let
            v =
              if values ? ${name} then
                values.${name}
              else if opt ? default then
                opt.default
              else
                throw "stub: ${path} has no value and no default";
            filled = opt.type.fill path v;
          in
          if opt.readOnly or false && values ? ${name} then
            throw "stub: ${path} is read-only"
          else if opt.type.check filled then
            filled
          else
            throw "stub: ${path}: the value is not a ${opt.type.name}"
      ) options;

  # The value kinds pkgs.formats.toml accepts (no null, no functions).
  isTomlValue =
    v:
    isBool v
    || isInt v
    || isFloat v
    || isString v
    || isPath v
    || (isList v && all isTomlValue v)
    || (isAttrs v && !(isDrv v) && all (k: isTomlValue v.${k}) (attrNames v));

  types = rec {
    bool = mkType "bool" isBool;
    str = mkType "str" isString;
    int = mkType "int" isInt;
    path = mkType "path" (v: (isString v || isPath v || isDrv v) && hasPrefix "/" (toString v));
    package = mkType "package" isDrv;
    enum = values: mkType "one of ${concatStringsSep ", " (map toString values)}" (v: elem v values);
    strMatching = re: mkType "string matching ${re}" (v: isString v && match re v != null);
    nullOr = t: t // {
      name = "null or ${t.name}";
      check = v: v == null || t.check v;
      fill = where: v: if v == null then null else t.fill where v;
    };
    listOf = t: {
      _type = "type";
      name = "list of ${t.name}";
      check = v: isList v && all t.check v;
      fill = where: v: if isList v then map (t.fill "${where}[]") v else v;
    };
    attrsOf = t: {
      _type = "type";
      name = "attribute set of ${t.name}";
      check = v: isAttrs v && all (k: t.check v.${k}) (attrNames v);
      fill = where: v: if isAttrs v then mapAttrs (k: t.fill "${where}.${k}") v else v;
    };
    submodule = m: {
      _type = "type";
      name = "submodule";
      check = isAttrs;
      fill = where: v: if isAttrs v then fillOptions where m.options v else v;
    };
    toml = mkType "TOML value" (v: isAttrs v && isTomlValue v);
  };

  lib = {
    inherit types;
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = what: {
      _type = "option";
      type = types.bool;
      default = false;
      description = "Whether to enable ${what}.";
    };
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
    mkIf = condition: content: {
      _type = "if";
      inherit condition content;
    };
    mkMerge = contents: {
      _type = "merge";
      inherit contents;
    };
    mkDefault = content: {
      _type = "override";
      priority = 1000;
      inherit content;
    };
    mkForce = content: {
      _type = "override";
      priority = 50;
      inherit content;
    };
    optional = c: x: if c then [ x ] else [ ];
    optionals = c: xs: if c then xs else [ ];
    optionalAttrs = c: set: if c then set else { };
    genAttrs =
      names: f:
      listToAttrs (
        map (n: {
          name = n;
          value = f n;
        }) names
      );
    hasSuffix =
      x: s:
      let
        n = builtins.stringLength s;
        m = builtins.stringLength x;
      in
      n >= m && substring (n - m) m s == x;
    escapeShellArg = s: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] s}'";
    assertMsg = c: msg: c || throw msg;
    versionAtLeast = a: b: builtins.compareVersions a b >= 0;
    platforms = {
      linux = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      darwin = [
        "x86_64-darwin"
        "aarch64-darwin"
      ];
    };
  };

  # nixpkgs' buildGoModule, returning its arguments; goVersion is the Go it claims to use.
  buildGoModuleWith = goVersion: args: args // { passthru.go.version = goVersion; };

  # Stands for a store path; toString gives its path.
  fakeDrv = name: {
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };

  pkgs = {
    panther = fakeDrv "panther-0-unstable";
    formats.toml = _: {
      type = types.toml;
      # Keeps what would be rendered, so tests can read the settings back.
      generate = name: value: fakeDrv name // { inherit value; };
    };
  };

  absent = {
    _type = "absent";
  };

  # mkIf/mkMerge/mkDefault resolved into plain values, roughly as the module system would: a false
  # mkIf disappears, merged attribute sets combine, lists concatenate, conflicting values fail.
  resolve =
    v:
    if isAttrs v && v ? _type then
      if v._type == "if" then
        (if v.condition then resolve v.content else absent)
      else if v._type == "merge" then
        foldl' merge absent (map resolve v.contents)
      else if v._type == "override" then
        resolve v.content
      else
        v
    else if isAttrs v && !(isDrv v) then
      let
        resolved = mapAttrs (_: resolve) v;
      in
      listToAttrs (
        map (k: {
          name = k;
          value = resolved.${k};
        }) (filter (k: resolved.${k} != absent) (attrNames resolved))
      )
    else if isList v then
      map resolve v
    else
      v;

  merge =
    a: b:
    if a == absent then
      b
    else if b == absent then
      a
    else if isAttrs a && isAttrs b && !(isDrv a) && !(isDrv b) then
      a // mapAttrs (k: bv: if a ? ${k} then merge a.${k} bv else bv) b
    else if isList a && isList b then
      a ++ b
    else if a == b then
      a
    else
      throw "stub: conflicting definitions";

  # Evaluates ../module.nix with `values` as services.panther and `services` as the rest of the
  # host's services (onepassword-secrets, tailscale). Returns the filled cfg and the resolved config.
  evalModule =
    {
      values ? { },
      services ? { },
    }:
    let
      module = import ../module.nix {
        inherit lib pkgs config;
      };
      cfg = fillOptions "services.panther" module.options.services.panther values;
      config = {
        services = {
          tailscale.interfaceName = "tailscale0";
        }
        // services
        // {
          panther = cfg;
        };
      };
      resolved = resolve module.config;
    in
    {
      inherit cfg module;
      config = if resolved == absent then { } else resolved;
    };
in
{
  inherit
    lib
    pkgs
    types
    resolve
    evalModule
    fakeDrv
    buildGoModuleWith
    ;
}
