# The smallest test harness that fails loudly: each case compares what it got with what it wants;
# `run` returns "ok: N checks" or throws a message listing every failed case.
let
  inherit (builtins)
    concatStringsSep
    filter
    length
    toJSON
    tryEval
    typeOf
    ;
  show =
    v:
    let
      r = tryEval (toJSON v);
    in
    if r.success then r.value else "<${typeOf v}>";
in
{
  case = name: got: want: { inherit name got want; };

  # A substring test, for messages (no regular expression, so any needle works).
  contains =
    needle: haystack:
    let
      n = builtins.stringLength needle;
      m = builtins.stringLength haystack;
    in
    builtins.any (i: builtins.substring i n haystack == needle) (builtins.genList (i: i) (
      if m >= n then m - n + 1 else 0
    ));

  # Whether evaluating v (deeply) fails, as a mistyped option or a failed check would.
  fails = v: !(tryEval (builtins.deepSeq v v)).success;

  run =
    suite: cases:
    let
      failed = filter (c: c.got != c.want) cases;
    in
    if failed == [ ] then
      "ok: ${suite}: ${toString (length cases)} checks"
    else
      throw (
        "${suite}: ${toString (length failed)} of ${toString (length cases)} checks failed:\n"
        + concatStringsSep "\n" (map (c: "FAIL ${c.name}\n  got:  ${show c.got}\n  want: ${show c.want}") failed)
      );
}
