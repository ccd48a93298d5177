# A small TOML writer for the offline checks only: the module renders config.toml with nixpkgs'
# pkgs.formats.toml, which cannot run here. scripts/nix-check.sh writes the module's settings with
# this and has panther itself load the result, which catches settings panther does not know or
# whose types it refuses, the mistakes that would stop the service at start.
let
  inherit (builtins)
    all
    attrNames
    concatLists
    concatStringsSep
    filter
    isAttrs
    isBool
    isFloat
    isInt
    isList
    isPath
    isString
    match
    toJSON
    ;

  key = k: if match "[A-Za-z0-9_-]+" k != null then k else toJSON k;
  dotted = path: concatStringsSep "." (map key path);

  isTable = v: isAttrs v;
  isTableArray = v: isList v && v != [ ] && all isAttrs v;

  value =
    v:
    if isString v then
      toJSON v
    else if isPath v then
      toJSON (toString v)
    else if isBool v then
      (if v then "true" else "false")
    else if isInt v then
      toString v
    else if isFloat v then
      let
        s = toJSON v;
      in
      # A float must not read back as an integer.
      if match ".*[.eE].*" s != null then s else "${s}.0"
    else if isList v then
      "[${concatStringsSep ", " (map value v)}]"
    else if isAttrs v then
      "{ ${concatStringsSep ", " (map (k: "${key k} = ${value v.${k}}") (attrNames v))} }"
    else
      throw "toml: ${builtins.typeOf v} has no TOML form";

  # One table: its plain keys under its header, then its sub-tables and arrays of tables.
  # An array element always gets its [[header]]: each one starts a new element. A plain table whose
  # keys are all sub-tables needs none.
  table =
    path: header: always: attrs:
    let
      names = attrNames attrs;
      plain = filter (k: !(isTable attrs.${k}) && !(isTableArray attrs.${k})) names;
      tables = filter (k: isTable attrs.${k}) names;
      arrays = filter (k: isTableArray attrs.${k}) names;
      own = map (k: "${key k} = ${value attrs.${k}}") plain;
      head = if header == null then [ ] else [ header ];
      emit = if header == null then own != [ ] else always || plain != [ ] || (tables == [ ] && arrays == [ ]);
      section = if emit then [ (concatStringsSep "\n" (head ++ own)) ] else [ ];
    in
    section
    ++ concatLists (map (k: table (path ++ [ k ]) "[${dotted (path ++ [ k ])}]" false attrs.${k}) tables)
    ++ concatLists (
      map (k: concatLists (map (el: table (path ++ [ k ]) "[[${dotted (path ++ [ k ])}]]" true el) attrs.${k})) arrays
    );
in
{
  toTOML = attrs: concatStringsSep "\n\n" (table [ ] null false attrs) + "\n";
}
