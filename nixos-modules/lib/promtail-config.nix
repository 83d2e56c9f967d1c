# Promtail configuration that ships the shop's JSON log files to Loki.
#
# One scrape config per service tails exactly `<logDir>/<logFile>` (shop.json: the file each
# service writes, `<name>.log`), with static labels `job = "alertlab"` and `service = "<name>"`;
# the pipeline parses the JSON line, turns `level` into a label and takes the
# line's own RFC 3339 timestamp. Only builtins are used.
{
  services,
  logDir,
  lokiUrl,
  positionsFile,
  httpListenAddress ? "127.0.0.1",
  httpListenPort ? 9080,
}: {
  # gRPC is unused (Promtail pushes over HTTP) but always served: on loopback, at a port the
  # kernel picks.
  server = {
    http_listen_address = httpListenAddress;
    http_listen_port = httpListenPort;
    grpc_listen_address = "127.0.0.1";
    grpc_listen_port = 0;
  };
  positions.filename = positionsFile;
  clients = [{url = "${lokiUrl}/loki/api/v1/push";}];
  scrape_configs =
    map (service: {
      job_name = "shop-${service.name}";
      static_configs = [
        {
          targets = ["localhost"];
          labels = {
            job = "alertlab";
            service = service.name;
            __path__ = "${logDir}/${service.logFile}";
          };
        }
      ];
      pipeline_stages = [
        {
          json.expressions = {
            level = "level";
            event = "event";
            timestamp = "timestamp";
          };
        }
        {labels.level = null;}
        {
          timestamp = {
            source = "timestamp";
            format = "RFC3339Nano";
          };
        }
      ];
    })
    services;
}
