#!/usr/bin/env bash
# A private Docker engine for mcp2's tests, on its own socket, data root and pid file, so it never
# touches a host engine. No network is needed: the test image is built from busybox-static.
#
#   eval "$(bash .ci/docker.sh setup)"   # install if missing, start (or reuse), build the image;
#                                        # stdout is only `export DOCKER_HOST=...`, logs go to stderr
#   bash .ci/docker.sh teardown          # stop the daemon this script started
#
# Overrides: MCPCP_DOCKER_SOCK, MCPCP_DOCKER_ROOT (data root), MCPCP_DOCKER_IMAGE.
set -euo pipefail

SOCK=${MCPCP_DOCKER_SOCK:-/run/mcpcp-docker.sock}
DATA_ROOT=${MCPCP_DOCKER_ROOT:-/var/lib/mcpcp-docker}
IMAGE=${MCPCP_DOCKER_IMAGE:-mcpcp/busybox:latest}
EXEC_ROOT=/run/mcpcp-docker
PIDFILE=/run/mcpcp-docker.pid
LOG=$DATA_ROOT.log
HOST=unix://$SOCK
START_TIMEOUT_S=60
STOP_TIMEOUT_S=30

. "$(dirname "$0")/lib.sh"

# Root is needed to run dockerd; CI runs as root, a developer may have sudo.
need_root " (dockerd needs it)"

engine() { DOCKER_HOST=$HOST docker "$@"; }
answering() { engine version --format '{{.Server.Version}}' >/dev/null 2>&1; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  installed busybox-static || missing+=(busybox-static)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]}"
  # Debian's package scripts may try to start a system dockerd; policy-rc.d usually stops that, and
  # ours runs on its own socket either way.
  apt_install "${missing[@]}"
}

start_daemon() {
  if answering; then
    log "reusing the engine already answering at $HOST"
    return
  fi
  # A pid file whose process is gone (killed machine, crash) would make dockerd refuse to start.
  if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    $SUDO rm -f "$PIDFILE" "$SOCK"
  fi
  $SUDO mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
  log "starting dockerd on $HOST (data root $DATA_ROOT, log $LOG)"
  # setsid and no inherited stdout: `eval "$(... setup)"` waits for stdout to close, and the
  # daemon must outlive this script. vfs needs no kernel overlay support; bridge=none with no
  # iptables because this machine has no bridge netfilter (containers get --network none anyway).
  $SUDO setsid dockerd \
    --host "$HOST" \
    --data-root "$DATA_ROOT" \
    --exec-root "$EXEC_ROOT" \
    --pidfile "$PIDFILE" \
    --storage-driver=vfs \
    --iptables=false \
    --ip-masq=false \
    --bridge=none \
    </dev/null >>"$LOG" 2>&1 &

  local waited=0
  until answering; do
    if [ "$waited" -ge $((START_TIMEOUT_S * 4)) ]; then
      tail -n 30 "$LOG" >&2 || true
      die "dockerd did not answer at $HOST within ${START_TIMEOUT_S} s (log above, full log $LOG)"
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
  log "engine $(engine version --format '{{.Server.Version}}') is up"
}

build_image() {
  if engine image inspect "$IMAGE" >/dev/null 2>&1; then
    log "image $IMAGE already present"
    return
  fi
  local busybox context
  busybox=$(dpkg-query -L busybox-static | grep -m1 -E '/bin/busybox$') ||
    die "busybox-static installs no /bin/busybox"
  context=$(mktemp -d)
  cp "$busybox" "$context/busybox"
  cat >"$context/Dockerfile" <<'EOF'
# mcpcp/busybox: a static busybox and its applets, nothing else; built offline.
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
CMD ["sh"]
EOF
  log "building $IMAGE from $busybox"
  # The classic builder needs no buildx plugin; the RUN step needs no network.
  local built=0
  DOCKER_BUILDKIT=0 engine build --network none --quiet --tag "$IMAGE" "$context" >&2 || built=$?
  rm -rf "$context"
  [ "$built" -eq 0 ] || die "docker build of $IMAGE failed"
  log "built $IMAGE"
}

setup() {
  install_packages
  command -v docker >/dev/null || die "no docker CLI on PATH after installing docker.io"
  start_daemon
  build_image
  echo "export DOCKER_HOST=$HOST"
}

teardown() {
  if [ ! -f "$PIDFILE" ]; then
    log "no pid file at $PIDFILE: nothing to stop"
    return
  fi
  local pid waited=0
  pid=$(cat "$PIDFILE")
  if ! kill -0 "$pid" 2>/dev/null; then
    log "dockerd (pid $pid) is not running"
    $SUDO rm -f "$PIDFILE"
    return
  fi
  log "stopping dockerd (pid $pid)"
  $SUDO kill -TERM "$pid"
  # dockerd stops its containers and its containerd before it exits.
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge $((STOP_TIMEOUT_S * 4)) ]; then
      log "dockerd still running after ${STOP_TIMEOUT_S} s: SIGKILL"
      $SUDO kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
  log "dockerd stopped"
}

case "${1:-}" in
setup) setup ;;
teardown) teardown ;;
*) die "usage: bash .ci/docker.sh setup|teardown" ;;
esac
