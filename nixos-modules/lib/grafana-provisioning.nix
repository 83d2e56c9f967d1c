# Grafana's data sources and dashboard provider, as the observability module gives them to
# services.grafana.provision. Builtins only, so the checks evaluate it with nix-instantiate
# (services/alertlab-grafana/tests/provisioning_nix.rs).
#
#   datasources: grafana/datasources.json with the PostgreSQL data source at postgresUrl, its
#     password a reference (postgresPassword, e.g. $__file{...}, never the secret itself), and
#     the Prometheus data source's timeInterval set to the scrape interval: Grafana's smallest
#     query step, and the base of $__rate_interval = max($__interval + scrape, 4 * scrape).
#   dashboardProviders: the dashboards of dashboardsPath, in the one folder of the alert rules.
{
  datasources,
  rules,
  dashboardsPath,
  scrapeInterval,
  postgresUrl,
  postgresPassword,
}: let
  folders = builtins.attrNames (builtins.listToAttrs (map (group: {
      name = group.folder;
      value = null;
    })
    rules.groups));
  folder =
    if builtins.length folders == 1
    then builtins.head folders
    else throw "grafana-provisioning.nix: the alert rules are in ${toString (builtins.length folders)} folders (${builtins.concatStringsSep ", " folders}); the dashboards go into the rules' one folder";

  configure = datasource:
    if datasource.type == "prometheus"
    then datasource // {jsonData = (datasource.jsonData or {}) // {timeInterval = scrapeInterval;};}
    else if datasource.uid == "postgres"
    then
      datasource
      // {
        url = postgresUrl;
        secureJsonData.password = postgresPassword;
      }
    else datasource;
in {
  datasources = datasources // {datasources = map configure datasources.datasources;};
  dashboardProviders = [
    {
      name = "alertlab";
      inherit folder;
      options.path = dashboardsPath;
      disableDeletion = true;
    }
  ];
}
