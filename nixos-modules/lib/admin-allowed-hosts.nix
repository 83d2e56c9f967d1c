# The names and addresses the services' fault API answers to besides `localhost` and
# loopback addresses (their `--admin-allowed-hosts`): the host's name, its FQDN when it has a
# domain, the address the services listen on, and the host's static interface addresses.
# Wildcard and loopback addresses are left out (loopback is always allowed, a wildcard is not
# a name a client uses). A request naming any other host is refused: DNS rebinding makes a
# browser send the attacker's name. Only builtins are used.
{
  hostName,
  domain ? null,
  listenAddress,
  interfaces ? {},
}: let
  staticAddresses =
    builtins.concatMap (
      interface: map (a: a.address) ((interface.ipv4.addresses or []) ++ (interface.ipv6.addresses or []))
    )
    (builtins.attrValues interfaces);
  fqdn =
    if domain != null && domain != "" && hostName != ""
    then ["${hostName}.${domain}"]
    else [];
  leftOut = host:
    host
    == ""
    || builtins.elem host ["0.0.0.0" "::" "::1" "localhost"]
    || builtins.match "127\\..*" host != null;
  unique = builtins.foldl' (kept: host:
    if builtins.elem host kept
    then kept
    else kept ++ [host]) [];
in
  unique (builtins.filter (host: !leftOut host) ([hostName] ++ fqdn ++ [listenAddress] ++ staticAddresses))
