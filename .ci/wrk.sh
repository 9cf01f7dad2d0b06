#!/usr/bin/env bash
# The native load generator for `npm run bench`: Debian's wrk. Nothing else is downloaded.
#
#   bash .ci/wrk.sh setup   # install wrk if missing; logs go to stderr
set -euo pipefail

. "$(dirname "$0")/lib.sh"

setup() {
  if command -v wrk >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null || die "no apt-get: install wrk (https://github.com/wg/wrk)"
  log "installing wrk"
  apt_install wrk
  command -v wrk >/dev/null || die "wrk installed but not on PATH"
}

case "${1:-}" in
setup) setup ;;
*) die "usage: $0 setup" ;;
esac
