#!/usr/bin/env python3
"""Prints each criterion figure of the hot-path bench as a ratio to the HMAC floor.

Run `cargo bench -p switchyard-core --bench matching` first; this reads
target/criterion/*/new/estimates.json (or $CARGO_TARGET_DIR/criterion).
"""
import json
import os
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent
target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
base = target / "criterion"


def median_ns(path):
    with open(path / "new" / "estimates.json") as f:
        return json.load(f)["median"]["point_estimate"]


# Criterion writes `a/b` benchmark ids of `bench_function` as `a_b`, groups as `group/id`.
floor = median_ns(base / "floor_hmac_sha256")
rows = []
for path in sorted(base.rglob("new/estimates.json")):
    bench = path.parent.parent
    name = str(bench.relative_to(base))
    if name.startswith("hooks") or name == "report":
        continue
    rows.append((name, median_ns(bench)))
order = ["floor", "verify", "normalize", "reference", "match", "whole"]
rows.sort(key=lambda r: (next((i for i, o in enumerate(order) if r[0].startswith(o)), 9), r[0]))
print(f"{'benchmark':45} {'median':>12} {'x floor':>8}")
for name, ns in rows:
    print(f"{name:45} {ns / 1000:>9.2f} us {ns / floor:>8.2f}")
