#!/usr/bin/env bash
# Trim a debootstrapped root filesystem for openfoal/sandbox-python: no docs, man pages,
# locales, apt lists or caches (they only add size), and a sandbox user for readability.
set -euo pipefail
root="$1"
[ -d "$root/usr" ] || { echo "trim: $root is not a root filesystem" >&2; exit 1; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/usr/share/i18n/* "$root"/usr/share/zoneinfo/right \
  "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/var/log/* "$root"/debootstrap
$SUDO find "$root/usr/lib" -name '__pycache__' -prune -exec rm -rf {} + 2>/dev/null || true
$SUDO find "$root/usr/lib" -path '*/python3*/test' -prune -exec rm -rf {} + 2>/dev/null || true
$SUDO mkdir -p "$root/workspace"
grep -q '^sandbox:' "$root/etc/passwd" \
  || echo 'sandbox:x:1000:1000:sandbox:/tmp:/bin/sh' | $SUDO tee -a "$root/etc/passwd" >/dev/null
grep -q '^sandbox:' "$root/etc/group" \
  || echo 'sandbox:x:1000:' | $SUDO tee -a "$root/etc/group" >/dev/null
