#!/usr/bin/env bash
# Install Debian's PostgreSQL server when it is missing (the cloud store's tests start private
# servers from its binaries; the system cluster is not used).
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  exit 0
fi
echo "install-postgres: installing postgresql"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
