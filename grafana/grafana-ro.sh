#!/usr/bin/env bash
# Creates or updates Grafana's read-only PostgreSQL role with grafana-ro.sql: run by the NixOS
# unit alertlab-grafana-ro (nixos-modules/shop.nix) and by the tests, as a superuser.
#
#   GRAFANA_RO_ROLE           the role's name (required)
#   GRAFANA_RO_PASSWORD_FILE  file with its password (default: the unit's credential
#                             $CREDENTIALS_DIRECTORY/password); its first line without
#                             surrounding blanks is the password, as labctl reads it (and
#                             Grafana, which trims the whole file)
#   GRAFANA_RO_SQL            the grants (default: grafana-ro.sql beside this script)
#   PSQL                      psql to run (default: psql on PATH)
# Further arguments go to psql: the connection (--dbname, --host, --port, --username).
#
# The password reaches psql on standard input only, for \password, which reads the terminal
# instead when there is one: run this without a controlling terminal (a systemd unit has none).
set -euo pipefail

role=${GRAFANA_RO_ROLE:?GRAFANA_RO_ROLE must name the role}
password_file=${GRAFANA_RO_PASSWORD_FILE:-${CREDENTIALS_DIRECTORY:?no GRAFANA_RO_PASSWORD_FILE and no CREDENTIALS_DIRECTORY}/password}
sql=${GRAFANA_RO_SQL:-$(dirname "${BASH_SOURCE[0]}")/grafana-ro.sql}

read -r password <"$password_file" || true
if [ -z "$password" ]; then
  echo "grafana-ro.sh: $password_file: the first line (the password) is empty" >&2
  exit 1
fi

# \password asks for the password twice.
printf '%s\n%s\n' "$password" "$password" |
  "${PSQL:-psql}" --no-psqlrc --quiet --set ON_ERROR_STOP=1 --set "role=$role" --file "$sql" "$@"
