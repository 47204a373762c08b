#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install, start the services the tests need
# (Docker engine, sandbox images, Chromium, PostgreSQL), then Python tests, browser tests and
# TypeScript checks. Any missing service makes its tests fail, never skip.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # jlpm (bundled with JupyterLab) calls itself by name

bash scripts/setup.sh
for script in install-docker.sh build-sandbox-images.sh install-chromium.sh install-postgres.sh install-hub.sh; do
  if [ -f "scripts/$script" ]; then
    echo "test: scripts/$script"
    bash "scripts/$script"
  fi
done

status=0
# TypeScript: lint and unit tests of the lab extension
(cd labextension && jlpm install --immutable >/dev/null && jlpm lint:check && jlpm test) || status=$?
# Python: unit, kernel, gateway end-to-end and Docker sandbox tests
.venv/bin/python -m pytest -p no:cacheprovider "$@" || status=$?
# browser tests: real JupyterLab in headless Chromium (their own pytest process: Playwright's
# sync API runs its own event loop)
if [ $# -eq 0 ]; then
  .venv/bin/python -m pytest -p no:cacheprovider ui-tests || status=$?
fi
exit $status
