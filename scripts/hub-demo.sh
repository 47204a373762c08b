#!/usr/bin/env bash
# A local JupyterHub for a team demo: users alice, bob and carol (carol an approver, alice an
# admin), each with OpenFoal and the demo model, plus Postgres and the OpenFoal cloud service.
# Usage: OPENFOAL_HUB_PASSWORD=... scripts/hub-demo.sh PORT   (Ctrl-C stops everything)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:?usage: OPENFOAL_HUB_PASSWORD=... scripts/hub-demo.sh PORT}
: "${OPENFOAL_HUB_PASSWORD:?set OPENFOAL_HUB_PASSWORD: the password every demo user logs in with}"
[ -x .venv/bin/jupyterhub ] || { echo "hub-demo: run scripts/setup.sh first" >&2; exit 1; }
bash scripts/install-hub.sh >&2

state=${OPENFOAL_HUB_STATE:-$(mktemp -d /tmp/openfoal-hub-demo-XXXXXX)}
mkdir -p "$state"
# Postgres in its own folder: the postgres user must reach it (a private parent may not let it)
pg_dir=${OPENFOAL_HUB_PG_DIR:-$(mktemp -d /tmp/openfoal-hub-pg-XXXXXX)}
mkdir -p "$pg_dir"
chmod 755 "$pg_dir"
hub_pid=""
stop_all() {
  trap - INT TERM EXIT
  echo "hub-demo: stopping" >&2
  if [ -n "$hub_pid" ] && kill -0 "$hub_pid" 2>/dev/null; then
    kill -TERM "$hub_pid" 2>/dev/null || true  # the Hub stops its proxy, service and servers
    wait "$hub_pid" 2>/dev/null || true
  fi
  if [ -d "$pg_dir/data" ]; then
    bindir=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/postgres | sort -V | tail -1)")
    as_pg=()
    [ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true
  fi
  echo "hub-demo: stopped" >&2
}
trap stop_all INT TERM EXIT

OPENFOAL_DATABASE_URL=$(bash scripts/start-postgres.sh "$pg_dir")
echo "hub-demo: Postgres at $OPENFOAL_DATABASE_URL (data in $pg_dir)" >&2
export OPENFOAL_DATABASE_URL OPENFOAL_HUB_STATE="$state" OPENFOAL_HUB_PORT="$port"
export OPENFOAL_MODEL=${OPENFOAL_MODEL:-demo}
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/jupyterhub -f deploy/jupyterhub/jupyterhub_config.py >"$state/jupyterhub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 1 240); do
  if ! kill -0 "$hub_pid" 2>/dev/null; then
    echo "hub-demo: the Hub exited; its log:" >&2
    tail -50 "$state/jupyterhub.log" >&2
    exit 1
  fi
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/hub/api/" 2>/dev/null; then
    break
  fi
  sleep 0.5
done
echo "hub-demo: JupyterHub with OpenFoal at http://127.0.0.1:$port/ (users alice, bob, carol;"
echo "hub-demo: the password is \$OPENFOAL_HUB_PASSWORD; state and logs in $state). Ctrl-C stops it."
wait "$hub_pid"
