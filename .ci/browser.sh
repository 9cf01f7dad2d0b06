#!/usr/bin/env bash
# The headless browser for the battle page test (test/e2e/battle-page.e2e.test.ts): Debian's
# chromium, driven by playwright-core. Nothing is downloaded by playwright itself.
#
#   bash .ci/browser.sh setup   # install chromium if missing; stdout stays empty, logs go to stderr
#   bash .ci/browser.sh path    # print the browser's path (what the test uses: CHROMIUM_PATH)
#
# Override: CHROMIUM_PATH (default /usr/bin/chromium).
set -euo pipefail

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}

log() { echo "[browser.sh] $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

SUDO=""
if [ "$(id -u)" != 0 ]; then
  SUDO="sudo"
fi

setup() {
  if [ -x "$CHROMIUM" ]; then
    log "using $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    return
  fi
  [ "$CHROMIUM" = /usr/bin/chromium ] || die "CHROMIUM_PATH=$CHROMIUM does not exist"
  command -v apt-get >/dev/null || die "no apt-get: install chromium and set CHROMIUM_PATH"
  [ -z "$SUDO" ] || command -v sudo >/dev/null || die "run as root or install sudo"
  log "installing chromium"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >&2
  [ -x "$CHROMIUM" ] || die "chromium installed but $CHROMIUM is missing"
  log "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
}

case "${1:-}" in
  setup) setup ;;
  path) echo "$CHROMIUM" ;;
  *) die "usage: $0 setup | path" ;;
esac
