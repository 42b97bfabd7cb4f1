#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into <out>/<target>/ from the project's own
sample deliveries (events/) and module manifests. Each seed is a readable text input in the
target's field layout (newline-separated fields, the last one the rest)."""

import base64
import hashlib
import hmac
import json
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = pathlib.Path(sys.argv[1])

GITLAB_HOOKS = {
    "merge_request": "Merge Request Hook",
    "issues": "Issue Hook",
    "note": "Note Hook",
    "pipeline": "Pipeline Hook",
    "push": "Push Hook",
    "release": "Release Hook",
}


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def events():
    for path in sorted((ROOT / "events").glob("*.json")):
        if path.name.startswith(("apigw-", "eventbridge-")):
            continue
        kind, rest = path.stem.split("-", 1)
        event = rest.rsplit("-", 1)[0] if "-" in rest else rest
        if kind == "gitlab":
            event = GITLAB_HOOKS.get(event, event)
        yield path.stem, event.encode(), path.read_bytes()


def main():
    secret = b"fuzz-secret-of-some-length"
    std_key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    now = str(int(time.time())).encode()
    for stem, event, body in events():
        mac = hmac.new(secret, body, hashlib.sha256)
        write("signature_headers", f"{stem}-github", b"sha256=" + mac.hexdigest().encode() + b"\n" + body)
        write("signature_headers", f"{stem}-b64", base64.b64encode(mac.digest()) + b"\n" + body)
        write("normalize", stem, event + b"\n" + body)
        write("payload", stem, b"pull_request.labels.name,pull_request.draft,issue.user.login\n" + body)
        signed = b"msg_" + stem.encode() + b"." + now + b"." + body
        sig = base64.b64encode(hmac.new(std_key, signed, hashlib.sha256).digest())
        write(
            "standard_webhooks",
            stem,
            b"msg_" + stem.encode() + b"\n" + now + b"\nv1a,abc v1," + sig + b"\n" + body,
        )
    for i, ts in enumerate([b"0", b"-1", b"9223372036854775807", b"-9223372036854775808", b" 17e8 ", b"+1795340171"]):
        write("standard_webhooks", f"timestamp-{i}", b"msg_1\n" + ts + b"\nv1,AAAA\n{}")
    write("signature_headers", "token", secret + b"\n{}")
    edge = [
        b'{"a":' * 127 + b"1" + b"}" * 127,
        b"[" * 128 + b"]" * 128,
        b'"\\ud83d\\ude00 \\ud800 \\udc00"',
        b"[1e308, 1e309, -0, 0.1e-400, 123456789012345678901234567890]",
        b'{"sender": {"login": "a"}, "sender": {"type": "Bot"}, "pull\\u005frequest": {"draft": false}}',
        b' \t\r\n{"x": "tab\there"} ',
    ]
    for i, body in enumerate(edge):
        write("payload", f"edge-{i}", b"x.y,a\n" + body)
    for path in sorted(ROOT.glob("functions/modules/*/module.yaml")):
        write("manifest", path.parent.name, path.read_bytes())
    write(
        "manifest",
        "pull",
        b"name: deploy\ndescription: d\npull:\n  lease: 5m\n  max_attempts: 3\n"
        b"triggers:\n  - webhook:\n      event: [push, pull_request]\n      actions: [opened]\n"
        b"      branches: [main, 'release/**', '!release/old']\n      paths: ['src/**']\n"
        b"      entity: '{repository.full_name}#{pull_request.number}'\n"
        b"      filter:\n        $or:\n          - pull_request.draft: [false]\n"
        b"          - sender.login: [{anything-but: [{suffix: '[bot]'}]}]\n"
        b"      cooldown: 1h30m\n  - schedule:\n      cron: '*/15 9-17 * * MON-FRI'\n"
        b"      timezone: Europe/Berlin\n  - api: {}\n",
    )
    payload = (ROOT / "events/github-pull_request-opened.json").read_bytes()
    filters = [
        {"pull_request.draft": [False], "pull_request.labels.name": [{"prefix": "area/"}, "bug"]},
        {"pull_request.additions": [{"numeric": [">", 10, "<=", 1e9]}], "action": [{"anything-but": ["closed"]}]},
        {"$or": [{"sender.login": [{"suffix": {"equals-ignore-case": "[BOT]"}}]}, {"repository": {"private": [True]}}]},
        {"pull_request.title": [{"wildcard": "*fix*"}, {"equals-ignore-case": "WIP"}], "missing": [{"exists": False}]},
    ]
    templates = ["{repository.full_name}#{pull_request.number}", "pr-{pull_request.id}", "{a}{b}}"]
    globs = ["main,release/**,!release/old", "feature/*+,v?[0-9].*", "**/*.rs,\\*literal"]
    names = ["release/1.2", "feature/x", "src/main.rs"]
    for i, f in enumerate(filters):
        seed = "\n".join([json.dumps(f), templates[i % 3], globs[i % 3], names[i % 3]]).encode()
        write("pattern", f"seed-{i}", seed + b"\n" + payload)


main()
