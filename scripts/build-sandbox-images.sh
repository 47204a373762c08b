#!/usr/bin/env bash
# Build the cloud sandbox images locally (no image registry is needed); safe to run again.
#   openfoal/sandbox-shell   FROM scratch with Debian's static busybox (about 2 MB)
#   openfoal/sandbox-python  a trimmed Debian bookworm minbase with python3 (about 120 MB)
# An image that already exists is kept (FORCE=1 rebuilds). The Python image is bootstrapped
# from the Debian mirror this machine's apt sources name (DEBIAN_MIRROR overrides it).
# Needs a running Docker engine, debootstrap and busybox-static (scripts/install-docker.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

SHELL_IMAGE="${SHELL_IMAGE:-openfoal/sandbox-shell:latest}"
PYTHON_IMAGE="${PYTHON_IMAGE:-openfoal/sandbox-python:latest}"
SUITE="${DEBIAN_SUITE:-bookworm}"
FORCE="${FORCE:-0}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

have_image() {
  [ "$FORCE" != "1" ] && docker image inspect "$1" >/dev/null 2>&1
}

# The first Debian archive URI in the apt sources (one-line and deb822 formats) that serves
# $SUITE itself (not the security archive).
debian_mirror() {
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 1
  awk -v suite="$SUITE" '
    function take(uri) { if (!found) { print uri; found = 1 } }
    # one-line format: deb [options] URI SUITE COMPONENTS...
    /^[[:space:]]*deb[[:space:]]/ {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($(i + 1) == suite) take($i)
      next
    }
    # deb822 format: stanzas of Field: value lines, separated by blank lines
    /^[[:space:]]*$/ { if (uris != "" && suites ~ ("(^| )" suite "( |$)") && types ~ /deb( |$)/) take(uris); uris = suites = types = ""; next }
    /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
    /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); split($0, u, " "); uris = u[1] }
    /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
    END { if (uris != "" && suites ~ ("(^| )" suite "( |$)") && types ~ /deb( |$)/) take(uris) }
  ' "${files[@]}"
}

build_shell() {
  if have_image "$SHELL_IMAGE"; then
    echo "build-sandbox-images: $SHELL_IMAGE exists"
    return
  fi
  local busybox=/bin/busybox
  if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
    echo "build-sandbox-images: $busybox is missing or not static (install busybox-static)" >&2
    exit 1
  fi
  local ctx
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' RETURN
  cp "$busybox" "$ctx/busybox"
  cp sandbox-images/shell/Dockerfile "$ctx/Dockerfile"
  echo "build-sandbox-images: building $SHELL_IMAGE"
  # The classic builder: a FROM scratch image needs nothing BuildKit offers.
  DOCKER_BUILDKIT=0 docker build -q -t "$SHELL_IMAGE" "$ctx" >"$ctx/build.log" 2>&1 || {
    cat "$ctx/build.log" >&2
    exit 1
  }
}

build_python() {
  if have_image "$PYTHON_IMAGE"; then
    echo "build-sandbox-images: $PYTHON_IMAGE exists"
    return
  fi
  local mirror="${DEBIAN_MIRROR:-}"
  if [ -z "$mirror" ]; then
    mirror=$(debian_mirror || true)
  fi
  if [ -z "$mirror" ]; then
    echo "build-sandbox-images: no Debian mirror for '$SUITE' in /etc/apt/sources.list{,.d/*} (set DEBIAN_MIRROR)" >&2
    exit 1
  fi
  command -v debootstrap >/dev/null || {
    echo "build-sandbox-images: debootstrap is missing (run scripts/install-docker.sh)" >&2
    exit 1
  }
  local work
  work=$(mktemp -d)
  trap '$SUDO rm -rf "$work"' RETURN
  echo "build-sandbox-images: bootstrapping $SUITE with python3 from $mirror"
  $SUDO debootstrap --variant=minbase --include=python3 "$SUITE" "$work/rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    exit 1
  }
  bash sandbox-images/python/trim.sh "$work/rootfs"
  echo "build-sandbox-images: importing $PYTHON_IMAGE"
  $SUDO tar -C "$work/rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV HOME=/tmp' \
    --change 'WORKDIR /workspace' \
    --change 'CMD ["sleep", "infinity"]' \
    - "$PYTHON_IMAGE" >/dev/null
}

build_shell
build_python
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^openfoal/sandbox-' || true
