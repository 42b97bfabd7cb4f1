#!/usr/bin/env bash
# `make test`: installs what is missing, builds, starts DynamoDB Local and cargo lambda
# watch on free ports, runs every unit and integration test, and stops what it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$root"
"$root/scripts/setup.sh"

# Build exactly what the watch runs (`cargo run --bin X` per function), so its first
# invoke finds the binaries fresh, then the tests.
for bin in router api scheduler notify pr-review issue-triage; do cargo build --quiet --bin "$bin"; done
cargo test --workspace --no-run --quiet

trap stop_all EXIT INT TERM
start_dynamodb
local_aws_env

# The functions served by the watch read this environment.
export SWITCHYARD_TABLE="switchyard-e2e"
export SWITCHYARD_SOURCES="github=github"
export SWITCHYARD_SECRET_GITHUB="e2e-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
export SWITCHYARD_INVOKE_TIMEOUT_SECONDS=120
# Modules call a forge stand-in that the module tests bind on this port.
SWITCHYARD_TEST_FORGE_PORT="$(free_port)"
export SWITCHYARD_TEST_FORGE_PORT
export GITHUB_API_URL="http://127.0.0.1:$SWITCHYARD_TEST_FORGE_PORT" GITHUB_TOKEN="standin-token"
export RUST_LOG="${RUST_LOG:-info}"
start_watch
cargo run --quiet --bin switchyard -- table create --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" --table "$SWITCHYARD_TABLE" >/dev/null

export SWITCHYARD_TEST_DYNAMODB="$AWS_ENDPOINT_URL_DYNAMODB"
export SWITCHYARD_TEST_LAMBDA="$AWS_ENDPOINT_URL_LAMBDA"
export SWITCHYARD_TEST_E2E_TABLE="$SWITCHYARD_TABLE"
export SWITCHYARD_TEST_E2E_SECRET="$SWITCHYARD_SECRET_GITHUB"
export SWITCHYARD_TEST_CLI="${CARGO_TARGET_DIR:-$root/target}/debug/switchyard"
if ! cargo test --workspace "$@"; then
  echo "tests failed; the functions' log (cargo lambda watch) ends with:" >&2
  tail -n 60 "$state_dir/watch.log" >&2 || true
  exit 1
fi
