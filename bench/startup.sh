#!/usr/bin/env bash
# Start-up time of the router in serve mode: from process start to the first answered
# request (an unsigned POST, answered 401 without touching DynamoDB), N runs (default 20),
# median and worst. Builds the release binary unless BIN points at one. 127.0.0.1 only.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${RUNS:-20}"
bin="${BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet --release --bin router --manifest-path "$root/Cargo.toml"
  bin="${CARGO_TARGET_DIR:-$root/target}/release/router"
fi
echo "binary: $bin ($(stat -c %s "$bin") bytes)"
BIN="$bin" RUNS="$runs" python3 - <<'PY'
import os, socket, statistics, subprocess, time
bin_, runs = os.environ["BIN"], int(os.environ["RUNS"])
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
request = (b"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"X-GitHub-Event: ping\r\nX-GitHub-Delivery: startup\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
times = []
for _ in range(runs):
    port = free_port()
    env = dict(os.environ, SWITCHYARD_LISTEN=f"127.0.0.1:{port}", SWITCHYARD_TABLE="startup",
               SWITCHYARD_SOURCES="github=github", SWITCHYARD_SECRET_GITHUB="startup-secret-0123456789",
               AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local",
               AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:9", SWITCHYARD_METRICS="off", RUST_LOG="warn")
    start = time.perf_counter()
    proc = subprocess.Popen([bin_], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(request)
                    answer = s.recv(64)
                if answer.startswith(b"HTTP/1.1 "):
                    times.append((time.perf_counter() - start) * 1000)
                    break
            except OSError:
                pass
            if time.perf_counter() - start > 10:
                raise SystemExit("no answer within 10 s")
            time.sleep(0.0005)
    finally:
        proc.terminate(); proc.wait()
times.sort()
print(f"start-up to first answer over {runs} runs: median {statistics.median(times):.1f} ms, "
      f"best {times[0]:.1f} ms, worst {times[-1]:.1f} ms")
PY
