#!/usr/bin/env bash
# `make dev`: installs what is missing, starts DynamoDB Local and the functions
# (cargo lambda watch), creates the table, sends a signed sample webhook, prints the
# router's answer and the resulting job, then keeps running until Ctrl-C.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$root"
"$root/scripts/setup.sh"
for bin in router api scheduler notify pr-review issue-triage switchyard; do cargo build --quiet --bin "$bin"; done
cli="${CARGO_TARGET_DIR:-$root/target}/debug/switchyard"

trap 'echo; echo "stopping"; stop_all' EXIT
trap 'exit 0' INT TERM
start_dynamodb
local_aws_env
export SWITCHYARD_TABLE="${SWITCHYARD_TABLE:-switchyard-dev}"
export SWITCHYARD_SOURCES="${SWITCHYARD_SOURCES:-github=github,forgejo=forgejo,gitlab=gitlab}"
# The documented development secret. Never use it outside your machine.
export SWITCHYARD_SECRET_GITHUB="${SWITCHYARD_SECRET_GITHUB:-switchyard-dev-secret}"
export SWITCHYARD_SECRET_FORGEJO="${SWITCHYARD_SECRET_FORGEJO:-switchyard-dev-secret}"
export SWITCHYARD_SECRET_GITLAB="${SWITCHYARD_SECRET_GITLAB:-switchyard-dev-secret}"
export SWITCHYARD_INVOKE_TIMEOUT_SECONDS=120
export RUST_LOG="${RUST_LOG:-info}"
start_watch
"$cli" table create --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" --table "$SWITCHYARD_TABLE"

url="$AWS_ENDPOINT_URL_LAMBDA/lambda-url/router/webhooks/github"
echo
echo "==> POST $url  (events/github-pull_request-opened.json, signed with the dev secret)"
answer="$("$cli" send --url "$url" --kind github --secret "$SWITCHYARD_SECRET_GITHUB" events/github-pull_request-opened.json)"
echo "$answer"
job_id="$(printf '%s\n' "$answer" | sed -n 's/.*"job_id": "\([0-9a-f]*\)".*/\1/p' | head -n1)"
if [ -n "$job_id" ]; then
  for _ in $(seq 1 100); do
    job="$("$cli" job get --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" --table "$SWITCHYARD_TABLE" "$job_id")"
    case "$job" in *'"status": "succeeded"'*|*'"status": "failed"'*) break ;; esac
    sleep 0.2
  done
  echo
  echo "==> job $job_id"
  echo "$job"
fi
# The API and its dashboard in serve mode, with a development token printed below.
tokens="$("$cli" token new --name dev --scopes admin+read+invoke+work+emit)"
dev_token="$(sed -n 's/^token: //p' <<<"$tokens")"
api_port="$(free_port)"
SWITCHYARD_API_TOKENS="$(sed -n 's/^SWITCHYARD_API_TOKENS entry: //p' <<<"$tokens")" \
  SWITCHYARD_API_LISTEN="127.0.0.1:$api_port" \
  "${CARGO_TARGET_DIR:-$root/target}/debug/api" >"$state_dir/api.log" 2>&1 &
EXTRA_PIDS="${EXTRA_PIDS:-} $!"
wait_for_port "$api_port" 30 api

cat <<INFO

Running. DynamoDB Local: $AWS_ENDPOINT_URL_DYNAMODB   functions: $AWS_ENDPOINT_URL_LAMBDA
Send more:  $cli send --url $url --kind github --secret switchyard-dev-secret events/github-issues-opened.json
Dashboard:  http://127.0.0.1:$api_port/dashboard   (token: $dev_token)
API:        SWITCHYARD_API_URL=http://127.0.0.1:$api_port SWITCHYARD_API_TOKEN=$dev_token $cli events list
Logs:       $state_dir/watch.log, $state_dir/api.log
Ctrl-C stops everything this started.
INFO
while kill -0 "$WATCH_PID" 2>/dev/null && kill -0 "$DYNAMODB_PID" 2>/dev/null; do sleep 1; done
echo "a local service exited; see $state_dir/*.log" >&2
exit 1
