#!/usr/bin/env bash
# `make test`: installs what is missing, builds, starts DynamoDB Local and cargo lambda
# watch on free ports, runs every unit and integration test, and stops what it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$root"
"$root/scripts/setup.sh" api-fuzz

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

# The dashboard in chromium (playwright-core), against the api and router in serve mode.
if [ "$#" -eq 0 ]; then
  "$root/scripts/browser-test.sh"
fi

# The API in serve mode against its OpenAPI document: schemathesis generates valid and
# invalid requests for every operation; any 5xx, undocumented status or off-schema body
# fails. Bounded by SWITCHYARD_FUZZ_SECONDS (default 60). Skipped when a test filter was given.
if [ "$#" -eq 0 ]; then
  bin="${CARGO_TARGET_DIR:-$root/target}/debug"
  tokens="$("$bin/switchyard" token new --name fuzz --scopes admin+read+invoke+emit)"
  token="$(sed -n 's/^token: //p' <<<"$tokens")"
  api_port="$(free_port)"
  SWITCHYARD_API_TOKENS="$(sed -n 's/^SWITCHYARD_API_TOKENS entry: //p' <<<"$tokens")" \
    SWITCHYARD_API_LISTEN="127.0.0.1:$api_port" SWITCHYARD_METRICS=off RUST_LOG=warn \
    "$bin/api" >"$state_dir/api-fuzz.log" 2>&1 &
  EXTRA_PIDS="${EXTRA_PIDS:-} $!"
  wait_for_port "$api_port" 30 api-fuzz
  schemathesis run docs/openapi.yaml --url "http://127.0.0.1:$api_port" \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --exclude-path '/webhooks/{source}' -n "${SWITCHYARD_FUZZ_EXAMPLES:-25}" --seed 1 \
    --no-color --generation-database none --max-time "${SWITCHYARD_FUZZ_SECONDS:-60}"
fi
