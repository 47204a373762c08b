#!/usr/bin/env bash
# Install OpenFoal for development on a fresh Debian machine (as root, or with sudo rights):
# system packages if missing, a virtualenv in .venv, the project (kernel spec, server
# extension, lab extension) installed editable with its test and dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv python3-pip)
command -v node >/dev/null || need_apt+=(nodejs)
command -v git >/dev/null || need_apt+=(git)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# the lab extension is built by the wheel's build hook (jlpm, bundled with JupyterLab)
.venv/bin/python -m pip install -q -e ".[test,dev]"
# (captured first: grep -q closing the pipe early would fail the pipeline under pipefail)
extensions=$(.venv/bin/jupyter server extension list 2>&1)
grep -q "openfoal_server_ext.*enabled" <<<"$extensions" \
  || { echo "setup: the OpenFoal server extension is not enabled" >&2; exit 1; }
kernels=$(.venv/bin/jupyter kernelspec list)
grep -q "openfoal" <<<"$kernels" \
  || { echo "setup: the OpenFoal kernel spec is not installed" >&2; exit 1; }
echo "setup: OpenFoal is installed in .venv"
