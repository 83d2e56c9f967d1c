# Promtail configuration that ships the shop's JSON log files to Loki.
#
# One scrape config per stream of log-streams.nix: it tails exactly that file (no glob) with the
# stream's static labels; the pipeline (shop.json's logShipping) parses the JSON line, turns
# `level` into a label and takes the line's own RFC 3339 timestamp. The HTTP server (metrics,
# readiness) and the gRPC server (which Promtail always starts; unused) listen on loopback.
# Only builtins are used.
{
  services,
  logDir,
  lokiUrl,
  positionsFile,
  logShipping,
  httpListenAddress ? "127.0.0.1",
  httpListenPort ? 9080,
}: let
  streams = import ./log-streams.nix {inherit services logDir logShipping;};
in {
  server = {
    http_listen_address = httpListenAddress;
    http_listen_port = httpListenPort;
    grpc_listen_address = "127.0.0.1";
    # A free port: nothing connects to it.
    grpc_listen_port = 0;
  };
  positions.filename = positionsFile;
  clients = [{url = "${lokiUrl}/loki/api/v1/push";}];
  scrape_configs =
    map (stream: {
      job_name = "shop-${stream.labels.service}";
      static_configs = [
        {
          targets = ["localhost"];
          labels = stream.labels // {__path__ = stream.path;};
        }
      ];
      pipeline_stages = [
        {json.expressions = logShipping.jsonFields;}
        {
          labels = builtins.listToAttrs (map (name: {
              inherit name;
              value = null;
            })
            logShipping.labelFields);
        }
        {
          timestamp = {
            source = logShipping.timestamp.field;
            inherit (logShipping.timestamp) format;
          };
        }
      ];
    })
    streams;
}
