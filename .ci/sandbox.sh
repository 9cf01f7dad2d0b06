#!/usr/bin/env bash
# mcp3's Python sandbox on a CI host: `bash .ci/sandbox.sh setup` installs what is missing of
# Debian's bubblewrap, python3 (with its standard library) and util-linux (prlimit, setpriv), then
# checks that a sandbox like mcp3's can really be created here. It logs to stderr and prints
# nothing on stdout, so `eval "$(bash .ci/sandbox.sh setup)"` is safe. Exit 1 when no sandbox works.
set -euo pipefail

log() { echo "[sandbox.sh] $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

apt_updated=false
install() {
  if ! $apt_updated; then
    log "apt-get update"
    as_root apt-get update -qq >&2
    apt_updated=true
  fi
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >&2
}

# The sandbox uses Debian's interpreter, never a pyenv/venv one earlier on PATH.
python_ok() {
  [ -x /usr/bin/python3 ] &&
    /usr/bin/python3 -I -S -c 'import json, decimal, statistics, sqlite3, hashlib' 2>/dev/null
}

setup() {
  [ -x /usr/bin/bwrap ] || install bubblewrap
  python_ok || install python3
  if [ ! -x /usr/bin/prlimit ] || [ ! -x /usr/bin/setpriv ]; then
    install util-linux
    # Some Debian releases ship setpriv on its own.
    [ -x /usr/bin/setpriv ] || install setpriv
  fi
  python_ok || { log "/usr/bin/python3 lacks its standard library"; exit 1; }
  log "$(/usr/bin/bwrap --version), $(/usr/bin/python3 --version), $(/usr/bin/prlimit --version)"
  check
}

# A trivial program under the same kind of sandbox mcp3 builds (see local-backends/mcp3).
check() {
  local drop=(--no-new-privs --inh-caps=-all)
  if [ "$(id -u)" -eq 0 ]; then
    drop=(--reuid=65534 --regid=65534 --clear-groups --bounding-set=-all "${drop[@]}")
  fi
  local out
  if ! out=$(/usr/bin/prlimit --cpu=5:6 --as=268435456 --nproc=16 --nofile=64 --core=0 -- \
    /usr/bin/setpriv "${drop[@]}" -- \
    /usr/bin/bwrap --unshare-all --unshare-user --disable-userns --as-pid-1 \
    --die-with-parent --new-session --clearenv \
    --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
    --proc /proc --dev /dev --tmpfs /tmp --remount-ro / -- \
    /usr/bin/python3 -I -S -c 'import os; print("sandbox ok", os.getuid())' 2>&1 </dev/null); then
    log "no sandbox can be created here: $out"
    log "bwrap needs unprivileged user namespaces (user.max_user_namespaces > 0; on Ubuntu also"
    log "kernel.apparmor_restrict_unprivileged_userns=0), and it must not be run inside a"
    log "container that forbids them."
    exit 1
  fi
  log "sandboxed run works: $out"
}

case "${1:-}" in
  setup) setup ;;
  check) check ;;
  *)
    echo "usage: $0 setup|check" >&2
    exit 2
    ;;
esac
