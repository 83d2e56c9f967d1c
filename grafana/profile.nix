# Timing profiles of the alert rules. grafana/alert-rules.json is written once, in the "demo"
# timing; this function derives the profile the lab runs with. Builtins only, so the checks can
# evaluate it with nix-instantiate. services/alertlab-grafana/src/profile.rs implements the same
# transformation, and a test compares the two.
#
#   demo: the rules unchanged (30s group interval, 30s or longer pending periods).
#   fast: every group's interval becomes "10s"; every rule's `for` becomes a third of the demo
#         value rounded up to a multiple of 10s ("0s" stays "0s"): 30s -> 10s, 1m -> 20s.
{
  rules,
  profile,
}: let
  # "1m30s" -> 90. Accepts [<n>h][<n>m][<n>s], at least one part, no leading zeros.
  parseDuration = path: text: let
    m = builtins.match "((0|[1-9][0-9]*)h)?((0|[1-9][0-9]*)m)?((0|[1-9][0-9]*)s)?" text;
    part = i: let
      digits = builtins.elemAt m i;
    in
      if digits == null
      then 0
      else builtins.fromJSON digits;
  in
    if !(builtins.isString text) || text == "" || m == null
    then throw "grafana/profile.nix: ${path}: unsupported duration ${builtins.toJSON text}; use e.g. 30s, 1m, 1m30s"
    else 3600 * part 1 + 60 * part 3 + part 5;

  fastPending = seconds: (seconds + 29) / 30 * 10;

  # Like map, but f also gets the element's index.
  imap = f: list: builtins.genList (i: f i (builtins.elemAt list i)) (builtins.length list);
  str = builtins.toString;

  fastRule = path: rule:
    if rule ? for
    then rule // {for = "${str (fastPending (parseDuration "${path}.for" rule.for))}s";}
    else rule;

  fastGroup = g: group:
    group
    // {interval = "10s";}
    // (
      if group ? rules
      then {rules = imap (r: fastRule "groups[${str g}].rules[${str r}]") group.rules;}
      else {}
    );

  profiles = {
    demo = rules;
    fast = rules // {groups = imap fastGroup rules.groups;};
  };
in
  profiles.${profile} or (throw "grafana/profile.nix: unknown profile ${builtins.toJSON profile}; expected \"demo\" or \"fast\"")
