# Shared helpers for dev.sh and test.sh: free ports, start/stop DynamoDB Local and
# cargo lambda watch, always by PID, from a git-ignored state directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/.local/venv/bin:$PATH"
state_dir="${SWITCHYARD_STATE_DIR:-$root/.dev}"
mkdir -p "$state_dir"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # port seconds name
  local port=$1 secs=$2 name=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$port)))" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$name did not open port $port within ${secs}s; its log:" >&2
  tail -n 40 "$state_dir/$name.log" >&2 || true
  return 1
}

start_dynamodb() {
  DYNAMODB_PORT="$(free_port)"
  local dir="$state_dir/dynamodb-data"
  mkdir -p "$dir"
  (cd "$dir" && exec java -Djava.library.path="$root/.local/dynamodb/DynamoDBLocal_lib" \
    -jar "$root/.local/dynamodb/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry \
    -port "$DYNAMODB_PORT" >"$state_dir/dynamodb.log" 2>&1) &
  DYNAMODB_PID=$!
  echo "$DYNAMODB_PID" >"$state_dir/dynamodb.pid"
  wait_for_port "$DYNAMODB_PORT" 60 dynamodb
  export DYNAMODB_PORT DYNAMODB_PID
}

# Starts `cargo lambda watch` serving every binary of the workspace; the functions inherit
# this environment (table, sources, secrets, endpoints).
start_watch() {
  WATCH_PORT="$(free_port)"
  # Functions started by the watch invoke each other through it.
  export AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$WATCH_PORT"
  (cd "$root" && exec cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$WATCH_PORT" \
    >"$state_dir/watch.log" 2>&1) &
  WATCH_PID=$!
  echo "$WATCH_PID" >"$state_dir/watch.pid"
  wait_for_port "$WATCH_PORT" 120 watch
  export WATCH_PORT WATCH_PID
}

stop_pid() { # pid
  local pid=$1
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

stop_all() {
  local pid
  for pid in ${EXTRA_PIDS:-}; do stop_pid "$pid"; done
  stop_pid "${WATCH_PID:-}"
  stop_pid "${DYNAMODB_PID:-}"
}

# Local endpoints and dummy credentials: DynamoDB Local with -sharedDb ignores the key.
local_aws_env() {
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DYNAMODB_PORT"
  unset AWS_PROFILE AWS_SESSION_TOKEN || true
}
