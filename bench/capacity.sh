#!/usr/bin/env bash
# What a delivery costs DynamoDB, measured through the router in serve mode against
# DynamoDB Local: the router's own per-delivery EMF line (StoreWriteUnits, StoreReadUnits,
# StoreCalls, StoreRoundTrips: the consumed capacity DynamoDB reported for every call, the
# numbers `make test`'s capacity test holds to its budget). Sends CAPACITY_DELIVERIES
# (default 50) distinct 35 KB pull requests (events/github-pull_request-opened.json) signed
# as GitHub would, with the builtin registry (notify and pr-review match, both with
# cooldowns), then prints min / mean / max per delivery and the cost per million deliveries
# at on-demand prices ($0.625 per million write request units, $0.125 per million read
# request units: us-east-1, standard table class).
# 127.0.0.1 only; everything started here is stopped by PID.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$root"
"$root/scripts/setup.sh"
n="${CAPACITY_DELIVERIES:-50}"
work="$state_dir/capacity"
rm -rf "$work" && mkdir -p "$work"
for b in router switchyard notify pr-review issue-triage api scheduler; do cargo build --quiet --bin "$b"; done
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
pids=""
trap 'for p in $pids; do stop_pid "$p"; done; stop_pid "${DYNAMODB_PID:-}"' EXIT
start_dynamodb
local_aws_env
table="switchyard-capacity"
"$bin/switchyard" table create --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" --table "$table" >/dev/null
secret="cap-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
port="$(free_port)"
# The modules run in `cargo lambda watch` (the real Invoke API emulator), on this table;
# their own writes are the module runtime's, reported by the capacity test, not here.
export SWITCHYARD_TABLE="$table" SWITCHYARD_SOURCES=github=github SWITCHYARD_SECRET_GITHUB="$secret"
export SWITCHYARD_INVOKE_TIMEOUT_SECONDS=120 GITHUB_API_URL="http://127.0.0.1:$(free_port)" GITHUB_TOKEN=none
start_watch
pids="$pids $WATCH_PID"
SWITCHYARD_LISTEN="127.0.0.1:$port" SWITCHYARD_METRICS=emf RUST_LOG=warn \
  "$bin/router" >"$work/router.out" 2>"$work/router.err" &
pids="$pids $!"
wait_for_port "$port" 30 capacity/router
python3 - "$port" "$secret" "$n" <<'PY'
import hashlib, hmac, json, sys, urllib.request
port, secret, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
base = json.load(open("events/github-pull_request-opened.json"))
for i in range(n + 1):  # the first warms the settings cache
    body = dict(base, number=5000 + i)
    body["pull_request"] = dict(base["pull_request"], number=5000 + i)
    data = json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/github", data=data, method="POST")
    req.add_header("content-type", "application/json")
    req.add_header("x-github-event", "pull_request")
    req.add_header("x-github-delivery", f"capacity-{i}")
    req.add_header("x-hub-signature-256", "sha256=" + hmac.new(secret, data, hashlib.sha256).hexdigest())
    try:
        urllib.request.urlopen(req).read()
    except urllib.error.HTTPError as e:
        sys.exit(f"delivery {i}: HTTP {e.code} {e.read()[:200]}")
PY
sleep 1
python3 - "$work/router.out" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if "StoreWriteUnits" in m:
        rows.append(m)
rows = rows[1:]  # the warm-up
if not rows:
    sys.exit("no StoreWriteUnits lines in the router's output")
def col(k):
    v = [r[k] for r in rows]
    return min(v), sum(v) / len(v), max(v)
print(f"{len(rows)} deliveries of the 35 KB pull request, builtin registry, router in serve mode")
print(f"{'metric':18} {'min':>6} {'mean':>6} {'max':>6}")
for k in ["StoreWriteUnits", "StoreReadUnits", "StoreCalls", "StoreRoundTrips"]:
    lo, mean, hi = col(k)
    print(f"{k:18} {lo:6.1f} {mean:6.1f} {hi:6.1f}")
w = col("StoreWriteUnits")[1]
r = col("StoreReadUnits")[1]
print(f"cost per million deliveries: ${w * 0.625:.2f} writes + ${r * 0.125:.2f} reads")
PY
