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

. "$(dirname "$0")/lib.sh"

setup() {
  if [ -x "$CHROMIUM" ]; then
    log "using $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    return
  fi
  [ "$CHROMIUM" = /usr/bin/chromium ] || die "CHROMIUM_PATH=$CHROMIUM does not exist"
  command -v apt-get >/dev/null || die "no apt-get: install chromium and set CHROMIUM_PATH"
  log "installing chromium"
  apt_install chromium fonts-dejavu-core
  [ -x "$CHROMIUM" ] || die "chromium installed but $CHROMIUM is missing"
  log "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
}

case "${1:-}" in
  setup) setup ;;
  path) echo "$CHROMIUM" ;;
  *) die "usage: $0 setup | path" ;;
esac
