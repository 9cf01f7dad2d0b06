#!/usr/bin/env bash
# Installs MCPCP's Node backends (mcp2: Docker commands, mcp3: sandboxed Python) as systemd
# services on a Debian or Ubuntu host, then checks that each answers /healthz. Run as root, from
# a checkout (or a copy of deploy/ beside dist/backends/), after `npm run bundle:backends`:
#
#   sudo deploy/install-host.sh --proxy-jwks https://mcpcp-proxy-production.<you>.workers.dev/.well-known/jwks.json
#
# It installs bubblewrap, python3, util-linux (and docker.io and busybox-static for mcp2) from the
# distribution; creates the users mcpcp-mcp2 (in the docker group) and mcpcp-sandbox (whose group
# the agents' Python runs in; each run has a uid of its own from mcp3's range, 70000 up, which
# belongs to no user); copies the bundles and a Node 22 binary to /opt/mcpcp; writes
# /etc/mcpcp/mcp{2,3}.env; installs and starts deploy/systemd/*.service. Running it again updates
# everything in place. The tunnel is set up separately (docs/deploy.md, "The tunnel").
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=/opt/mcpcp
ETC=/etc/mcpcp
UNIT_DIR=/etc/systemd/system
NODE_MIN_MAJOR=22
NODE_MIN_MINOR=12
HEALTH_TIMEOUT_S=30

usage() {
  cat <<EOF
usage: sudo $0 --proxy-jwks <url | @file> [options]

  --proxy-jwks VALUE  the proxy's public assertion keys, which the backends verify every request
                      with (required): the deployed proxy's https://<proxy>/.well-known/jwks.json
                      (a key rotation then needs nothing here), or @path/to/proxy-jwks.json to
                      write the JWKS itself into the env files
  --bundles DIR       where mcp2.mjs and mcp3.mjs are (default: $HERE/../dist/backends)
  --node PATH         the Node binary to install as $PREFIX/bin/node, ${NODE_MIN_MAJOR}.${NODE_MIN_MINOR} or newer
                      (default: the node on PATH)
  --only NAME         install only mcp2 or only mcp3
  --mcp2-env K=V      add a setting to $ETC/mcp2.env (repeatable), e.g. MCP2_ALLOWED_IMAGES=busybox
  --mcp3-env K=V      add a setting to $ETC/mcp3.env (repeatable), e.g. MCP3_CONCURRENCY=4
  --no-packages       do not run apt-get
  --no-start          install and enable the services, but do not (re)start or check them
  -h, --help          this text
EOF
}

log() { echo "[install-host] $*"; }
die() {
  echo "[install-host] error: $*" >&2
  exit 1
}

proxy_jwks=""
bundles="$HERE/../dist/backends"
node_bin=""
only=""
packages=true
start=true
mcp2_env=()
mcp3_env=()

need_value() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (--help)"; fi
}

while [ $# -gt 0 ]; do
  case "$1" in
  --proxy-jwks)
    need_value "$@"
    proxy_jwks=$2
    shift 2
    ;;
  --bundles)
    need_value "$@"
    bundles=$2
    shift 2
    ;;
  --node)
    need_value "$@"
    node_bin=$2
    shift 2
    ;;
  --only)
    need_value "$@"
    only=$2
    shift 2
    ;;
  --mcp2-env)
    need_value "$@"
    mcp2_env+=("$2")
    shift 2
    ;;
  --mcp3-env)
    need_value "$@"
    mcp3_env+=("$2")
    shift 2
    ;;
  --no-packages)
    packages=false
    shift
    ;;
  --no-start)
    start=false
    shift
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *) die "unknown argument: $1 (--help)" ;;
  esac
done

backends=(mcp2 mcp3)
case "$only" in
"") ;;
mcp2 | mcp3) backends=("$only") ;;
*) die "--only takes mcp2 or mcp3, not \"$only\"" ;;
esac
wants() { [[ " ${backends[*]} " == *" $1 "* ]]; }

# ── Check everything before changing anything ─────────────────────────────────────────────────
[ "$(id -u)" -eq 0 ] || die "run as root: it installs packages, users and services"
[ -n "$proxy_jwks" ] || die "--proxy-jwks is required (--help)"

# The env files hold one value per line, single-quoted for systemd.
env_line() {
  local line=$1
  [[ "$line" =~ ^[A-Z][A-Z0-9_]*=.*$ ]] || die "not a KEY=value setting: $line"
  [[ "$line" != *"'"* && "$line" != *$'\n'* ]] || die "a setting cannot hold ' or a newline: ${line%%=*}"
  printf "%s='%s'\n" "${line%%=*}" "${line#*=}"
}

for setting in ${mcp2_env[@]+"${mcp2_env[@]}"} ${mcp3_env[@]+"${mcp3_env[@]}"}; do
  env_line "$setting" >/dev/null
done

for name in "${backends[@]}"; do
  [ -r "$bundles/$name.mjs" ] || die "no $bundles/$name.mjs: run \`npm run bundle:backends\` first, or pass --bundles"
  [ -r "$HERE/systemd/mcpcp-$name.service" ] || die "no $HERE/systemd/mcpcp-$name.service"
done

if [ -z "$node_bin" ]; then
  node_bin=$(command -v node || true)
  [ -n "$node_bin" ] || die "no node on PATH: pass --node (a Node ${NODE_MIN_MAJOR} binary, e.g. the repository's node_modules/node/bin/node copied from a machine of the same architecture)"
fi
node_bin=$(readlink -f "$node_bin")
node_version=$("$node_bin" -p 'process.versions.node' 2>/dev/null) || die "$node_bin does not run"
IFS=. read -r major minor _ <<<"$node_version"
if [ "$major" -lt "$NODE_MIN_MAJOR" ] || { [ "$major" -eq "$NODE_MIN_MAJOR" ] && [ "$minor" -lt "$NODE_MIN_MINOR" ]; }; then
  die "$node_bin is Node $node_version; the backends need ${NODE_MIN_MAJOR}.${NODE_MIN_MINOR} or newer (pass --node)"
fi

case "$proxy_jwks" in
https://*) ;;
http://*) die "--proxy-jwks must be https (the backends would trust whoever answers it)" ;;
@*)
  file=${proxy_jwks#@}
  [ -r "$file" ] || die "cannot read $file"
  # One line of JSON, and only public keys: a signing key here would let the host sign assertions.
  proxy_jwks=$("$node_bin" -e '
    try {
      const jwks = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
      if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) throw new Error("it has no keys");
      if (jwks.keys.some((k) => "d" in k)) throw new Error("it holds a private key");
      console.log(JSON.stringify(jwks));
    } catch (error) {
      console.log(error.message);
      process.exit(1);
    }' <"$file") ||
    die "$file is not the proxy's public JWKS (proxy-jwks.json, never the signing key): $proxy_jwks"
  ;;
*) die "--proxy-jwks takes an https URL or @file" ;;
esac

systemd_running=false
[ -d /run/systemd/system ] && systemd_running=true
if $start && ! $systemd_running; then
  die "systemd is not running here; install with --no-start and start the units another way"
fi

# ── Packages ──────────────────────────────────────────────────────────────────────────────────
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

if $packages; then
  wanted=()
  if wants mcp3; then
    wanted+=(bubblewrap python3 util-linux)
  fi
  if wants mcp2; then
    wanted+=(docker.io busybox-static)
  fi
  missing=()
  for package in "${wanted[@]}"; do installed "$package" || missing+=("$package"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  # Newer Debian releases ship setpriv in a package of its own.
  if wants mcp3 && [ ! -x /usr/bin/setpriv ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends setpriv
  fi
fi
if wants mcp3; then
  for tool in /usr/bin/bwrap /usr/bin/python3 /usr/bin/prlimit /usr/bin/setpriv; do
    [ -x "$tool" ] || die "$tool is missing (mcp3's sandbox needs bubblewrap, python3, util-linux)"
  done
fi
if wants mcp2; then
  command -v docker >/dev/null || die "no docker CLI (package docker.io)"
  getent group docker >/dev/null || die "no docker group (package docker.io makes it)"
fi

# ── Users ─────────────────────────────────────────────────────────────────────────────────────
system_user() {
  id -u "$1" >/dev/null 2>&1 && return
  log "creating system user $1"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --comment "$2" "$1"
}
if wants mcp2; then
  # Its docker group membership comes from the unit (SupplementaryGroups=docker), not /etc/group,
  # so only the service has it, not a login as this user.
  system_user mcpcp-mcp2 "MCPCP mcp2 (run_docker)"
fi
if wants mcp3; then
  system_user mcpcp-sandbox "MCPCP mcp3 sandboxed programs"
fi

# ── Files ─────────────────────────────────────────────────────────────────────────────────────
install -d -m 0755 "$PREFIX" "$PREFIX/bin"
install -d -m 0700 "$ETC"
if [ "$node_bin" != "$(readlink -f "$PREFIX/bin/node" 2>/dev/null || true)" ]; then
  install -m 0755 "$node_bin" "$PREFIX/bin/node.new"
  mv -f "$PREFIX/bin/node.new" "$PREFIX/bin/node"
fi
install -m 0644 "$HERE/README.md" "$PREFIX/README.md"

write_env() {
  local name=$1
  shift
  local file="$ETC/$name.env" tmp
  tmp=$(mktemp "$ETC/.$name.env.XXXXXX")
  {
    echo "# Written by deploy/install-host.sh; run it again to change. See local-backends/$name/README.md."
    env_line "PROXY_JWKS=$proxy_jwks"
    for setting in "$@"; do env_line "$setting"; done
  } >"$tmp"
  chmod 0600 "$tmp"
  if [ -f "$file" ] && ! cmp -s "$tmp" "$file"; then cp -p "$file" "$file.previous"; fi
  mv -f "$tmp" "$file"
  log "wrote $file"
}

for name in "${backends[@]}"; do
  install -m 0644 "$bundles/$name.mjs" "$PREFIX/$name.mjs"
  install -m 0644 "$HERE/systemd/mcpcp-$name.service" "$UNIT_DIR/mcpcp-$name.service"
done
if wants mcp2; then
  write_env mcp2 ${mcp2_env[@]+"${mcp2_env[@]}"}
fi
if wants mcp3; then
  # No MCP3_SANDBOX_UID: each pool slot runs as a uid of its own from mcp3's default range, which
  # must belong to no user (mcp3 checks /etc/passwd and /etc/subuid, and refuses one that does).
  write_env mcp3 "MCP3_SANDBOX_GID=$(id -g mcpcp-sandbox)" ${mcp3_env[@]+"${mcp3_env[@]}"}
fi

# ── mcp2's default image, built offline like CI's (.ci/docker.sh) ───────────────────────────
build_busybox_image() {
  local image=mcpcp/busybox:latest busybox context
  docker image inspect "$image" >/dev/null 2>&1 && return
  busybox=$(dpkg-query -L busybox-static 2>/dev/null | grep -m1 -E '/bin/busybox$') || {
    log "warning: no busybox-static, so no $image: set MCP2_ALLOWED_IMAGES to images you pull"
    return
  }
  context=$(mktemp -d)
  cp "$busybox" "$context/busybox"
  printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' \
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]' 'ENV PATH=/bin' 'CMD ["sh"]' \
    >"$context/Dockerfile"
  log "building $image from $busybox"
  DOCKER_BUILDKIT=0 docker build --network none --quiet --tag "$image" "$context" >/dev/null
  rm -rf "$context"
}

# ── Services ──────────────────────────────────────────────────────────────────────────────────
units=()
for name in "${backends[@]}"; do units+=("mcpcp-$name.service"); done

if ! $systemd_running; then
  log "systemd is not running: installed, not enabled (units in $UNIT_DIR)"
  exit 0
fi
systemctl daemon-reload
if wants mcp2; then
  systemctl enable --now docker.service >/dev/null
  if [[ " ${mcp2_env[*]-} " != *" MCP2_ALLOWED_IMAGES="* ]]; then build_busybox_image; fi
fi
systemctl enable "${units[@]}" >/dev/null
if ! $start; then
  log "enabled ${units[*]}; not started (--no-start)"
  exit 0
fi
systemctl restart "${units[@]}"

# ── Health ────────────────────────────────────────────────────────────────────────────────────
# Through the installed Node: no curl needed. Prints the body; fails unless the status is "ok".
health() {
  "$PREFIX/bin/node" -e '
    const [url, deadline] = [process.argv[1], Date.now() + Number(process.argv[2]) * 1000];
    (async () => {
      for (;;) {
        try {
          const res = await fetch(url);
          const body = await res.json();
          // mcp3 answers only once its sandbox probe has run.
          console.log(JSON.stringify(body));
          process.exit(res.ok && body.status === "ok" ? 0 : 2);
        } catch {
          if (Date.now() > deadline) { console.log("no answer"); process.exit(1); }
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    })();' "$1" "$HEALTH_TIMEOUT_S"
}

failed=0
for name in "${backends[@]}"; do
  port=9005
  [ "$name" = mcp3 ] && port=9006
  if answer=$(health "http://127.0.0.1:$port/healthz"); then
    log "$name: healthy $answer"
  else
    failed=1
    log "$name: NOT healthy: $answer"
    log "  journalctl -u mcpcp-$name -n 50   shows why"
    if [ "$name" = mcp3 ]; then
      log "  a failed sandbox probe usually means unprivileged user namespaces are off:"
      log "  sysctl user.max_user_namespaces (must be > 0); on Ubuntu 24.04 and later also"
      log "  kernel.apparmor_restrict_unprivileged_userns, which needs an AppArmor profile for bwrap"
    fi
  fi
done
[ "$failed" -eq 0 ] || exit 1
log "done. Next: the tunnel (deploy/cloudflared/config.yml, docs/deploy.md)"
