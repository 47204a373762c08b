#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the browser tests; safe to run again.
# The browser tests launch /usr/bin/chromium directly, so Playwright never downloads one.
set -euo pipefail

if [ -x /usr/bin/chromium ] && /usr/bin/chromium --version >/dev/null 2>&1; then
  echo "chromium already installed: $(/usr/bin/chromium --version)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Fonts so that screenshots show real glyphs instead of boxes.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-liberation >/dev/null
/usr/bin/chromium --version
