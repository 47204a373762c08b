#!/usr/bin/env bash
# JupyterHub's proxy for the team tests and the Hub demo: configurable-http-proxy (npm) into
# .venv/hub-proxy (JupyterHub itself is a Python package of the test extra). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.venv/hub-proxy
if [ -x "$dest/node_modules/.bin/configurable-http-proxy" ]; then
  echo "install-hub: configurable-http-proxy is installed in $dest"
  exit 0
fi
command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
mkdir -p "$dest"
npm install --no-audit --no-fund --silent --prefix "$dest" configurable-http-proxy@^5
"$dest/node_modules/.bin/configurable-http-proxy" --version >/dev/null
echo "install-hub: configurable-http-proxy installed in $dest"
