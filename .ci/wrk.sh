#!/usr/bin/env bash
# The native load generator for `npm run bench`: Debian's wrk. Nothing else is downloaded.
#
#   bash .ci/wrk.sh setup   # install wrk if missing; logs go to stderr
set -euo pipefail

log() { echo "[wrk.sh] $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

SUDO=""
if [ "$(id -u)" != 0 ]; then
  SUDO="sudo"
fi

setup() {
  if command -v wrk >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null || die "no apt-get: install wrk (https://github.com/wg/wrk)"
  [ -z "$SUDO" ] || command -v sudo >/dev/null || die "run as root or install sudo"
  log "installing wrk"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk >&2
  command -v wrk >/dev/null || die "wrk installed but not on PATH"
}

case "${1:-}" in
setup) setup ;;
*) die "usage: $0 setup" ;;
esac
