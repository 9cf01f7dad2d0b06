#!/usr/bin/env bash
# `npm test`: makes sure the machine has what the tests use (a Python sandbox, a headless browser,
# a private Docker engine; each installed from Debian's packages only when missing), then runs
# every check: format and lint, generated types, type checks, and all vitest projects.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false

eval "$(bash .ci/sandbox.sh setup)"
bash .ci/browser.sh setup
docker_env=$(bash .ci/docker.sh setup)
eval "$docker_env"

npm run lint
npm run types:check
npm run typecheck
npm run deploy:check
exec vitest run "$@"
