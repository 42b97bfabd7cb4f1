#!/usr/bin/env bash
# The dashboard in a real browser, as part of `make test` (called by test.sh with DynamoDB
# Local and the watch running): router and api in serve mode on their own table, a published
# registry with a pull module and a module that skips, one signed webhook, then
# tests/browser/dashboard.mjs drives Debian's chromium through playwright-core.
# Screenshots go to $SWITCHYARD_SCREENSHOTS (default .dev/screenshots; docs/images refreshes
# the ones docs/api.md shows).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$root"
"$root/scripts/setup.sh" browser
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
shots="${SWITCHYARD_SCREENSHOTS:-$state_dir/screenshots}"
mkdir -p "$shots"
table="switchyard-dash-$$"
secret="dash-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
"$bin/switchyard" table create --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" --table "$table" >/dev/null

ops="$("$bin/switchyard" token new --name ops --scopes admin+read+invoke)"
viewer="$("$bin/switchyard" token new --name viewer --scopes read)"
entry() { sed -n 's/^SWITCHYARD_API_TOKENS entry: //p' <<<"$1"; }
token() { sed -n 's/^token: //p' <<<"$1"; }

api_port="$(free_port)"
router_port="$(free_port)"
SWITCHYARD_TABLE="$table" SWITCHYARD_API_TOKENS="$(entry "$ops"),$(entry "$viewer")" \
  SWITCHYARD_API_LISTEN="127.0.0.1:$api_port" SWITCHYARD_REGISTRY_REFRESH=1 SWITCHYARD_METRICS=off \
  RUST_LOG=warn "$bin/api" >"$state_dir/dash-api.log" 2>&1 &
pids="$!"
# Only what this script started; DynamoDB Local and the watch belong to the caller.
trap 'for p in $pids; do stop_pid "$p"; done' EXIT
SWITCHYARD_TABLE="$table" SWITCHYARD_SOURCES=github=github SWITCHYARD_SECRET_GITHUB="$secret" \
  SWITCHYARD_LISTEN="127.0.0.1:$router_port" SWITCHYARD_REGISTRY_REFRESH=1 SWITCHYARD_METRICS=off \
  RUST_LOG=warn "$bin/router" >"$state_dir/dash-router.log" 2>&1 &
pids="$pids $!"
wait_for_port "$api_port" 30 dash-api
wait_for_port "$router_port" 30 dash-router

# The shipped modules, a pull module started by hand, and one that skips pull requests
# that are not closed.
bundle="$(mktemp -d)"
for f in functions/modules/*/module.yaml; do cp "$f" "$bundle/$(basename "$(dirname "$f")").yaml"; done
cat >"$bundle/deploy-box.yaml" <<'YAML'
name: deploy-box
description: Deploys from a machine behind the firewall (a pull worker).
pull: { lease: 5m, max_attempts: 3 }
triggers:
  - invoke: {}
YAML
cat >"$bundle/release-notes.yaml" <<'YAML'
name: release-notes
description: Drafts release notes when a pull request is merged.
function: notify
triggers:
  - webhook: { event: pull_request, actions: [closed] }
YAML
SWITCHYARD_API_URL="http://127.0.0.1:$api_port" SWITCHYARD_API_TOKEN="$(token "$ops")" \
  "$bin/switchyard" registry push "$bundle" >/dev/null
rm -rf "$bundle"
sleep 2 # the router looks for a new registry version every second

answer="$("$bin/switchyard" send --url "http://127.0.0.1:$router_port/webhooks/github" --kind github \
  --secret "$secret" events/github-pull_request-opened.json)"
# `send` prints `HTTP <status>`, then the answer.
event_id="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1].split("\n", 1)[1])["event_id"])' "$answer")"

DASH_API="http://127.0.0.1:$api_port" DASH_ADMIN_TOKEN="$(token "$ops")" DASH_READ_TOKEN="$(token "$viewer")" \
  DASH_EVENT_ID="github:$event_id" DASH_SCREENSHOTS="$shots" \
  PLAYWRIGHT_FROM="$root/.local/browser/node_modules/" CHROMIUM="$(command -v chromium)" \
  node tests/browser/dashboard.mjs
