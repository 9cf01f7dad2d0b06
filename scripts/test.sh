#!/usr/bin/env bash
# `npm test`: makes sure the machine has what the tests use (a Python sandbox, a headless browser,
# a private Docker engine; each installed from Debian's packages only when missing), then runs
# every check: format and lint, generated types, type checks, and all vitest projects.
#
# Each step before vitest prints one line when it passes; its whole output is kept in
# test-artifacts/steps/<step>.log, and printed here when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false

STEPS=test-artifacts/steps
mkdir -p "$STEPS"
rm -f "$STEPS"/*.log

passed() { echo "✔ $1 ($((SECONDS - $2)) s; output in $STEPS/$1.log)"; }

failed() {
  cat "$STEPS/$1.log" >&2
  echo "✘ $1 failed (exit $2): its output is above, and in $STEPS/$1.log" >&2
  exit "$2"
}

# step NAME COMMAND...: runs COMMAND with stdout and stderr in the step's log.
step() {
  local name=$1 began=$SECONDS code=0
  shift
  "$@" >"$STEPS/$name.log" 2>&1 || code=$?
  [ "$code" -eq 0 ] || failed "$name" "$code"
  passed "$name" "$began"
}

# setup NAME COMMAND...: for the host setup scripts, whose stdout is shell to eval (`export ...`)
# and whose logs go to stderr; the logs go to the step's log, the stdout is evaluated here.
setup() {
  local name=$1 began=$SECONDS code=0 exports
  shift
  exports=$("$@" 2>"$STEPS/$name.log") || code=$?
  [ "$code" -eq 0 ] || failed "$name" "$code"
  eval "$exports"
  passed "$name" "$began"
}

setup sandbox bash .ci/sandbox.sh setup
setup browser bash .ci/browser.sh setup
setup docker bash .ci/docker.sh setup

step lint npm run lint
step types-check npm run types:check
step typecheck npm run typecheck
step deploy-check npm run deploy:check
exec vitest run "$@"
