#!/usr/bin/env bash
# The deploy path, with the SAM CLI and cargo-lambda from .local/venv (installed when missing):
#   deploy.sh lint            cfn-lint and `sam validate --lint` on template.yaml
#   deploy.sh build [ARCH]    `sam build` (rust-cargolambda, no Docker); ARCH arm64|x86_64
#   deploy.sh build-check     `sam build` into a scratch directory, then each function's zipped size
#   deploy.sh deploy [ARCH]   `sam build`, then `sam deploy` (guided until samconfig.toml has a stack)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh" deploy
export PATH="$root/.local/venv/bin:$PATH" SAM_CLI_TELEMETRY=0
# `sam validate` needs a region even offline; a configured one wins.
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region 2>/dev/null || echo us-east-1)}}"

# The Rust target for an architecture; cargo-lambda cross-compiles with zig, but the target's
# standard library must be installed (`rustup target add`).
rust_target() { [ "$1" = arm64 ] && echo aarch64-unknown-linux-gnu || echo x86_64-unknown-linux-gnu; }
has_target() { rustup target list --installed 2>/dev/null | grep -qx "$(rust_target "$1")"; }

sam_build() { # ARCH BUILD_DIR
  local arch="$1"
  if ! has_target "$arch"; then
    echo "deploy: the Rust target $(rust_target "$arch") is not installed." >&2
    echo "  rustup target add $(rust_target "$arch")   (or build the other architecture: ARCH=x86_64)" >&2
    exit 1
  fi
  sam build --build-dir "$2" --parameter-overrides "Architecture=$arch"
}

case "${1:-}" in
  lint)
    cfn-lint template.yaml
    sam validate --lint --region "$region"
    ;;
  build)
    sam_build "${2:-arm64}" .aws-sam/build
    ;;
  build-check)
    arch=arm64
    has_target arm64 || { arch=x86_64; echo "deploy: no aarch64 target here; checking x86_64" >&2; }
    dir="$(mktemp -d)"
    trap 'rm -rf "$dir"' EXIT
    started=$(date +%s)
    sam_build "$arch" "$dir/build"
    echo "sam build ($arch): $(( $(date +%s) - started )) s"
    for fn in "$dir"/build/*Function; do
      (cd "$fn" && zip -q -9 "$dir/fn.zip" bootstrap)
      printf '%-22s bootstrap %8d bytes, zipped %8d bytes\n' "$(basename "$fn")" \
        "$(stat -c %s "$fn/bootstrap")" "$(stat -c %s "$dir/fn.zip")"
      rm -f "$dir/fn.zip"
    done
    ;;
  deploy)
    # The architecture saved by an earlier guided deploy, else ARCH, else arm64; the build
    # and the stack's Architecture parameter must agree.
    saved="$(grep -o 'Architecture=\\*"*[a-z0-9_]*' samconfig.toml 2>/dev/null | grep -o '[a-z0-9_]*$' | head -n1 || true)"
    arch="${2:-${saved:-arm64}}"
    if [ -n "$saved" ] && [ "$saved" != "$arch" ]; then
      echo "deploy: samconfig.toml deploys Architecture=$saved; change it there to deploy $arch" >&2
      exit 1
    fi
    sam_build "$arch" .aws-sam/build
    if grep -q '^parameter_overrides' samconfig.toml 2>/dev/null; then
      sam deploy
    else
      sam deploy --guided --parameter-overrides "Architecture=$arch"
    fi
    ;;
  *)
    echo "usage: deploy.sh lint | build [ARCH] | build-check | deploy [ARCH]" >&2
    exit 2
    ;;
esac
