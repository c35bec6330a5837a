#!/usr/bin/env bash
# The browser the web console's tests drive: Debian's `chromium`, installed when absent.
#
# Playwright (a dev extra) launches it with executable_path=/usr/bin/chromium; no browser is
# ever downloaded. Idempotent, and a no-op when chromium is already there, so `make test`
# runs it every time. Needs root (or passwordless sudo) only to install; without it, says
# what to run and exits non-zero.
set -euo pipefail

CHROMIUM=${OTEL_DIAG_CHROMIUM:-/usr/bin/chromium}

say() { echo "chromium.sh: $*" >&2; }

if [ -x "$CHROMIUM" ]; then
  exit 0
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo "$@"
  else
    say "chromium is missing and root is needed to install it; run as root: bash $0"
    exit 1
  fi
}

say "installing chromium from Debian's packages"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
if [ ! -x "$CHROMIUM" ]; then
  say "apt-get installed chromium but $CHROMIUM is still missing"
  exit 1
fi
say "chromium ready at $CHROMIUM"
