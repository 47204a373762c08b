#!/usr/bin/env bash
# Start a private PostgreSQL server on a free loopback port (trust auth, user openfoal) and
# print its URL, e.g. for OPENFOAL_DATABASE_URL. Data in DIR (default: a new temp folder);
# stop it with: runuser -u postgres -- pg_ctl -D DIR/data stop   (pg_ctl in the bin folder).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-postgres.sh >&2
bindir=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/postgres | sort -V | tail -1)")
dir=${1:-$(mktemp -d /tmp/openfoal-pg-XXXXXX)}
mkdir -p "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U openfoal --auth=trust -E UTF8 >"$dir/initdb.log"
"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -h 127.0.0.1" start >&2
echo "postgresql://openfoal@127.0.0.1:$port/postgres"
