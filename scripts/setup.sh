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

# A second run with nothing changed skips pip and the lab extension build: each part keeps a
# stamp (a hash of what it is built from) in .venv and is redone only when that hash changes.
hash_of() { find "$@" -type f -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1; }
py_hash=$(hash_of pyproject.toml scripts/setup.sh share jupyter-config)
lab_hash=$(hash_of labextension/package.json labextension/yarn.lock labextension/tsconfig.json \
  labextension/src labextension/style labextension/schema)
py_stamp=.venv/.openfoal-python.stamp
lab_stamp=.venv/.openfoal-labextension.stamp
lab_built=openfoal_server_ext/labextension/static/style.js
[ -f "$lab_built" ] && had_lab=1 || had_lab=0

if [ "$(cat "$py_stamp" 2>/dev/null)" != "$py_hash" ] || ! .venv/bin/python -c 'import openfoal_server_ext' 2>/dev/null; then
  .venv/bin/python -m pip install -q --upgrade pip
  # the lab extension is built by the wheel's build hook (jlpm, bundled with JupyterLab)
  .venv/bin/python -m pip install -q -e ".[test,dev]"
  echo "$py_hash" >"$py_stamp"
else
  echo "setup: Python install unchanged (pyproject.toml, kernel spec, server config)"
fi
if [ "$(cat "$lab_stamp" 2>/dev/null)" != "$lab_hash" ] || [ ! -f "$lab_built" ]; then
  if [ "$had_lab" = 1 ] || [ ! -f "$lab_built" ]; then
    # the build hook skips a lab extension that is already built: rebuild changed sources here
    (export PATH="$PWD/.venv/bin:$PATH" && cd labextension && jlpm install && jlpm build:prod)
    # an editable install copied the build into the prefix once: refresh that copy
    installed=.venv/share/jupyter/labextensions/openfoal
    if [ -d "$installed" ]; then
      rm -rf "$installed/static" "$installed/schemas"
      cp -r openfoal_server_ext/labextension/. "$installed/"
    fi
  fi
  echo "$lab_hash" >"$lab_stamp"
else
  echo "setup: lab extension unchanged"
fi
# (captured first: grep -q closing the pipe early would fail the pipeline under pipefail)
extensions=$(.venv/bin/jupyter server extension list 2>&1)
grep -q "openfoal_server_ext.*enabled" <<<"$extensions" \
  || { echo "setup: the OpenFoal server extension is not enabled" >&2; exit 1; }
kernels=$(.venv/bin/jupyter kernelspec list)
grep -q "openfoal" <<<"$kernels" \
  || { echo "setup: the OpenFoal kernel spec is not installed" >&2; exit 1; }
echo "setup: OpenFoal is installed in .venv"
