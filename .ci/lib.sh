# Shared by the host setup scripts in .ci/ (browser, docker, wrk); source it after
# `set -euo pipefail`.
# Logs go to stderr under the script's name, so a script's stdout stays what it promises.

log() { echo "[$(basename "$0")] $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Root runs commands as they are; anyone else through sudo.
SUDO=""
if [ "$(id -u)" != 0 ]; then
  SUDO="sudo"
fi

# Dies, saying why root is needed, when it is neither root nor can use sudo.
need_root() {
  [ -z "$SUDO" ] || command -v sudo >/dev/null || die "run as root$1 or install sudo"
}

# Installs Debian packages without recommends; apt's output goes to stderr.
apt_install() {
  need_root ""
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >&2
}
