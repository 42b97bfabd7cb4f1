#!/usr/bin/env bash
# `make fuzz`: builds the cargo-fuzz targets (fuzz/) and runs each for FUZZ_SECONDS (default
# 60), optimized with debug assertions and overflow checks on, from a corpus seeded with
# events/ and the shipped manifests. A panic, an assertion, a sanitizer report, an input
# slower than FUZZ_TIMEOUT seconds (default 10) or more than 2 GB of memory stops the run
# and leaves the input under fuzz/artifacts/<target>/.
#   FUZZ_TARGETS="normalize pattern" make fuzz    # a subset
#   FUZZ_SECONDS=600 make fuzz                    # longer
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
seconds="${FUZZ_SECONDS:-60}"
timeout="${FUZZ_TIMEOUT:-10}"
targets="${FUZZ_TARGETS:-signature_headers standard_webhooks normalize manifest pattern payload}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (crates.io)" >&2
  cargo install --locked cargo-fuzz
fi
# cargo-fuzz passes nightly flags (-Zsanitizer). Use a nightly toolchain when there is one;
# otherwise let the stable compiler accept them (RUSTC_BOOTSTRAP), since no toolchain can be
# downloaded on every machine. FUZZ_TOOLCHAIN=stable forces the second way.
if [ "${FUZZ_TOOLCHAIN:-}" != stable ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi

state="$root/.dev/fuzz"
rm -rf "$state/seeds"
python3 "$root/fuzz/seeds.py" "$state/seeds"
"${fuzz[@]}" build -O -a

status=0
for t in $targets; do
  corpus="$state/corpus/$t"
  mkdir -p "$corpus"
  echo "fuzz: $t for ${seconds}s" >&2
  if ! "${fuzz[@]}" run -O -a "$t" "$corpus" "$state/seeds/$t" -- \
    -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 -print_final_stats=1 \
    >"$state/$t.log" 2>&1; then
    echo "fuzz: $t FAILED; the end of its log ($state/$t.log):" >&2
    tail -n 40 "$state/$t.log" >&2
    status=1
    continue
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' "$state/$t.log" \
    | sed "s/^/fuzz: $t /" >&2
  echo "fuzz: $t corpus $(find "$corpus" -type f | wc -l) inputs" >&2
done
exit "$status"
