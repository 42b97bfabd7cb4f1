#!/usr/bin/env bash
# Load on loopback: the router (serve mode, release build, DynamoDB Local) against two peers
# that verify the same GitHub delivery without storing anything: adnanh/webhook (Debian
# package `webhook`, a payload-hmac-sha256 trigger rule running /bin/true) and a Node server
# using @octokit/webhooks `verifyAndReceive` (bench/peers/octokit.mjs). wrk drives each with
# the 35 KB events/github-pull_request-opened.json, a distinct X-GitHub-Delivery per request,
# at 1, 4 and 16 connections, LOAD_SECONDS each (default 10); and the router once more with a
# wrong signature (`router-401`: verification only, no store). Prints requests/s, p50 and p99
# side by side with the router's ratio to each peer, CPU per request of each server (and of
# DynamoDB Local during the router's runs), peak RSS, and checks that every delivery the
# router accepted was stored (its event completed, its job queued).
# 127.0.0.1 only; everything started here is stopped by PID. About 2.5 minutes after the build.
#   LOAD_SECONDS=30 LOAD_CONNECTIONS="1 16" bench/load.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$root"
"$root/scripts/setup.sh" bench
seconds="${LOAD_SECONDS:-10}"
connections="${LOAD_CONNECTIONS:-1 4 16}"
body="$root/events/github-pull_request-opened.json"
work="$state_dir/load"
rm -rf "$work" && mkdir -p "$work"
secret="load-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
signature="sha256=$(python3 -c 'import hashlib,hmac,sys; print(hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$secret" "$body")"

cargo build --quiet --release --bin router --bin api --bin switchyard
bin="${CARGO_TARGET_DIR:-$root/target}/release"

pids=""
trap 'for p in $pids; do stop_pid "$p"; done; stop_pid "${DYNAMODB_PID:-}"' EXIT
start_dynamodb
local_aws_env
table="switchyard-load"
"$bin/switchyard" table create --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" --table "$table" >/dev/null

# The router, with one pull module matching every pull request: each accepted delivery is
# verified, normalized, de-duplicated, matched, its event stored once, its job claimed and
# its queue item written (single-item writes, no transaction). Published through the API,
# as in production.
ops="$("$bin/switchyard" token new --name load --scopes admin+read)"
api_port="$(free_port)"
router_port="$(free_port)"
SWITCHYARD_TABLE="$table" SWITCHYARD_API_TOKENS="$(sed -n 's/^SWITCHYARD_API_TOKENS entry: //p' <<<"$ops")" \
  SWITCHYARD_API_LISTEN="127.0.0.1:$api_port" RUST_LOG=warn "$bin/api" >"$work/api.log" 2>&1 &
pids="$pids $!"
SWITCHYARD_TABLE="$table" SWITCHYARD_SOURCES=github=github SWITCHYARD_SECRET_GITHUB="$secret" \
  SWITCHYARD_LISTEN="127.0.0.1:$router_port" SWITCHYARD_REGISTRY_REFRESH=1 RUST_LOG=info \
  "$bin/router" >"$work/router.log" 2>&1 &
router_pid=$!
pids="$pids $router_pid"
wait_for_port "$api_port" 30 load/api
wait_for_port "$router_port" 30 load/router
mkdir -p "$work/bundle"
cat >"$work/bundle/load-sink.yaml" <<'YAML'
name: load-sink
description: Takes every pull request event (a pull module, so the job waits in its queue).
pull: { lease: 5m, max_attempts: 3 }
triggers:
  - webhook: { event: pull_request }
YAML
SWITCHYARD_API_URL="http://127.0.0.1:$api_port" SWITCHYARD_API_TOKEN="$(sed -n 's/^token: //p' <<<"$ops")" \
  "$bin/switchyard" registry push "$work/bundle" >"$work/push.log" 2>&1 || { cat "$work/push.log" >&2; exit 1; }
sleep 2 # the router looks for a new registry version every second

# adnanh/webhook with a payload-hmac-sha256 rule on the same header and secret.
webhook_port="$(free_port)"
cat >"$work/hooks.json" <<JSON
[{"id": "github", "execute-command": "/bin/true", "command-working-directory": "$work",
  "response-message": "ok",
  "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": "$secret",
    "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}}}]
JSON
webhook -hooks "$work/hooks.json" -ip 127.0.0.1 -port "$webhook_port" >"$work/webhook.log" 2>&1 &
webhook_pid=$!
pids="$pids $webhook_pid"

# @octokit/webhooks verifyAndReceive in a plain node:http server.
octokit_port="$(free_port)"
OCTOKIT_FROM="$root/.local/bench" SECRET="$secret" PORT="$octokit_port" \
  node "$root/bench/peers/octokit.mjs" >"$work/octokit.log" 2>&1 &
octokit_pid=$!
pids="$pids $octokit_pid"
wait_for_port "$webhook_port" 30 load/webhook
wait_for_port "$octokit_port" 30 load/octokit

declare -A url=(
  [router]="http://127.0.0.1:$router_port/webhooks/github"
  [webhook]="http://127.0.0.1:$webhook_port/hooks/github"
  [octokit]="http://127.0.0.1:$octokit_port/"
)
declare -A pid=([router]=$router_pid [webhook]=$webhook_pid [octokit]=$octokit_pid)

# One signed delivery and one with a wrong signature to each: a server that accepts the
# wrong one, or refuses the right one, would be measured doing something else.
for s in router webhook octokit; do
  good="$(curl -s -o /dev/null -w '%{http_code}' -X POST "${url[$s]}" -H 'Content-Type: application/json' \
    -H 'X-GitHub-Event: pull_request' -H "X-GitHub-Delivery: check-$s" \
    -H "X-Hub-Signature-256: $signature" --data-binary @"$body")"
  bad="$(curl -s -o /dev/null -w '%{http_code}' -X POST "${url[$s]}" -H 'Content-Type: application/json' \
    -H 'X-GitHub-Event: pull_request' -H "X-GitHub-Delivery: bad-$s" \
    -H "X-Hub-Signature-256: sha256=$(printf '0%.0s' $(seq 64))" --data-binary @"$body")"
  case "$good" in 2*) ;; *) echo "load: $s answered $good to a signed delivery" >&2; exit 1 ;; esac
  case "$bad" in 2*) echo "load: $s accepted a wrong signature ($bad)" >&2; exit 1 ;; esac
  echo "load: $s answers $good signed, $bad wrong signature" >&2
done

# CPU time (user + system, clock ticks) of a process so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
java_pid="$(pgrep -P "$DYNAMODB_PID" java || echo "$DYNAMODB_PID")"
url[router-401]="${url[router]}"
pid[router-401]=$router_pid
wrong="sha256=$(printf '0%.0s' $(seq 64))"

# `router-401` sends a wrong signature: the router reads the body, computes the HMAC and
# answers 401 without touching the store, the same work as the peers' minus their handler.
results="$work/results.jsonl"
for s in router router-401 webhook octokit; do
  sig="$signature"
  [ "$s" = router-401 ] && sig="$wrong"
  for c in $connections; do
    server_before="$(cpu_ticks "${pid[$s]}")"
    store_before="$(cpu_ticks "$java_pid")"
    line="$(LOAD_BODY="$body" LOAD_SIGNATURE="$sig" LOAD_RUN="$s-c$c" \
      timeout $((seconds + 30)) wrk -t1 -c"$c" -d"${seconds}s" --timeout 10s -s "$root/bench/load.lua" "${url[$s]}" \
      | tail -n 1)"
    server_cpu=$(($(cpu_ticks "${pid[$s]}") - server_before))
    store_cpu=$(($(cpu_ticks "$java_pid") - store_before))
    rss="$(awk '/VmHWM/ {print $2}' "/proc/${pid[$s]}/status")"
    echo "{\"server\":\"$s\",\"connections\":$c,\"peak_rss_kb\":$rss,\"server_cpu_ticks\":$server_cpu,\"store_cpu_ticks\":$store_cpu,\"wrk\":$line}" >>"$results"
    echo "load: $s c=$c $line" >&2
  done
done
dynamodb_rss="$(awk '/VmHWM/ {print $2}' "/proc/$java_pid/status" 2>/dev/null || echo 0)"

CLK_TCK="$(getconf CLK_TCK)" RESULTS="$results" DYNAMODB_RSS="$dynamodb_rss" TABLE="$table" SECONDS_EACH="$seconds" python3 "$root/bench/load_report.py"
