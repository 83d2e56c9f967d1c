# The log streams the shop ships to Loki, from shop.json: one per service, the file it writes
# (`<logDir>/<logFile>`) with the static labels `job` (logShipping.job) and `service`. Both
# shippers' configurations (promtail-config.nix, alloy-config.nix) are generated from this and
# from logShipping's parsing, so they describe the same streams. Only builtins are used.
{
  services,
  logDir,
  logShipping,
}:
map (service: {
  path = "${logDir}/${service.logFile}";
  labels = {
    inherit (logShipping) job;
    service = service.name;
  };
})
services
