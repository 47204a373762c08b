#!/usr/bin/env bash
# Give this machine a running Docker engine for the cloud sandbox; safe to run again.
# On a fresh Debian machine (as root, or with sudo rights) it installs what is missing
# (docker.io, plus debootstrap and busybox-static, which build the sandbox images), starts
# dockerd in the background when `docker info` does not answer, and waits until it does.
# Environment: DOCKER_WAIT_S (default 60) bounds the wait; the daemon's log goes to
# DOCKERD_LOG (default /var/log/dockerd.log).
set -euo pipefail
cd "$(dirname "$0")/.."

WAIT_S="${DOCKER_WAIT_S:-60}"
LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

docker_answers() {
  timeout 10 docker info >/dev/null 2>&1
}

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"
}

# apt-get install the named packages that are not installed yet.
install_missing() {
  local need=() pkg
  for pkg in "$@"; do
    installed "$pkg" || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "install-docker: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

# debootstrap and busybox-static build the sandbox images (scripts/build-sandbox-images.sh).
install_missing debootstrap busybox-static

if docker_answers; then
  echo "install-docker: the Docker engine is running ($(docker version --format '{{.Server.Version}}'))"
else
  command -v dockerd >/dev/null || install_missing docker.io

  if ! pgrep -x dockerd >/dev/null; then
    echo "install-docker: starting dockerd (log: $LOG)"
    # setsid: the daemon outlives this script and the shell that ran it.
    $SUDO setsid dockerd >>"$LOG" 2>&1 </dev/null &
  fi

  deadline=$((SECONDS + WAIT_S))
  until docker_answers; do
    if [ $SECONDS -ge $deadline ]; then
      echo "install-docker: the Docker engine did not answer within ${WAIT_S}s; last lines of $LOG:" >&2
      tail -n 20 "$LOG" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "install-docker: the Docker engine is running ($(docker version --format '{{.Server.Version}}'))"
fi
# (the Docker SDK for Python is a dependency of the package itself: pyproject.toml)
