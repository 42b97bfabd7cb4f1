#!/usr/bin/env python3
"""The report of bench/load.sh: the three servers side by side per connection count, the
router's ratio to each peer (throughput: router/peer, above 1 is faster; latency:
router/peer, below 1 is faster), peak RSS, and a count of what the router stored."""

import json
import os
import urllib.request

rows = [json.loads(line) for line in open(os.environ["RESULTS"])]
by = {(r["server"], r["connections"]): r for r in rows}
servers = ["router", "router-401", "webhook", "octokit"]
tck = int(os.environ.get("CLK_TCK", "100"))
conns = sorted({r["connections"] for r in rows})


def rps(r):
    return r["wrk"]["requests"] / (r["wrk"]["duration_us"] / 1e6)


def ms(us):
    return us / 1000


print(f"\n{os.environ['SECONDS_EACH']} s per run, wrk -t1, 35,293-byte signed pull_request, 127.0.0.1\n")
head = (f"{'conns':>5}  {'server':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>7} {'errors':>6}"
        f" {'CPU us/req':>10} {'store us/req':>12}")
print(head + f"  {'req/s ratio':>11} {'p50 ratio':>9} {'p99 ratio':>9} {'401 req/s ratio':>15}")
for c in conns:
    router, verify_only = by[("router", c)], by[("router-401", c)]
    for s in servers:
        r = by[(s, c)]
        w = r["wrk"]
        per = lambda ticks: ticks / tck * 1e6 / max(w["requests"], 1)
        store = f"{per(r['store_cpu_ticks']):>12.0f}" if s == "router" else f"{'':>12}"
        line = (f"{c:>5}  {s:<10} {rps(r):>9.0f} {ms(w['p50_us']):>8.2f} {ms(w['p99_us']):>8.2f}"
                f" {w['non_2xx']:>7} {w['socket_errors']:>6} {per(r['server_cpu_ticks']):>10.0f} {store}")
        if s in ("webhook", "octokit"):
            line += (f"  {rps(router) / rps(r):>11.2f} {router['wrk']['p50_us'] / max(w['p50_us'], 1):>9.2f}"
                     f" {router['wrk']['p99_us'] / max(w['p99_us'], 1):>9.2f}"
                     f" {rps(verify_only) / rps(r):>15.2f}")
        print(line)
print("(ratios: router / peer, and router-401 / peer for throughput; CPU per request from the process's user + system time, at "
      f"{1e6 / tck:.0f} us resolution per run; router-401's answers are 401 by design)\n")

print("peak RSS (VmHWM) after each server's runs:")
for s in servers:
    if s != "router-401":
        print(f"  {s:<10} {max(by[(s, c)]['peak_rss_kb'] for c in conns) / 1024:8.1f} MB")
print(f"  {'dynamodb':<10} {int(os.environ.get('DYNAMODB_RSS') or 0) / 1024:8.1f} MB (DynamoDB Local, the JVM)\n")


def count(prefix, status=None):
    """Items whose pk starts with `prefix` (and whose status is `status`), by a paginated
    Scan (DynamoDB Local does not check the request signature, only that there is one)."""
    endpoint = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
    total, start = 0, None
    while True:
        req = {"TableName": os.environ["TABLE"], "Select": "COUNT",
               "FilterExpression": "begins_with(pk, :p)",
               "ExpressionAttributeValues": {":p": {"S": prefix}}}
        if status:
            req["FilterExpression"] += " AND #s = :s"
            req["ExpressionAttributeNames"] = {"#s": "status"}
            req["ExpressionAttributeValues"][":s"] = {"S": status}
        if start:
            req["ExclusiveStartKey"] = start
        http = urllib.request.Request(endpoint, data=json.dumps(req).encode(), headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.Scan",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
                             "SignedHeaders=host, Signature=0"})
        out = json.load(urllib.request.urlopen(http))
        total += out["Count"]
        start = out.get("LastEvaluatedKey")
        if not start:
            return total


# wrk counts answers. A request in flight when a run ends is cut off: the router may have
# reserved its event (left `in_progress` until a redelivery resumes it), queued its job, or
# finished it unanswered. So: accepted <= completed events <= queued jobs == jobs <= events
# <= accepted + in flight (one module matches each delivery).
accepted = 1 + sum(r["wrk"]["requests"] - r["wrk"]["non_2xx"] for r in rows if r["server"] == "router")
in_flight = sum(conns)
events, completed = count("EVENT#"), count("EVENT#", "completed")
jobs, queued = count("JOB#"), count("JOB#", "queued")
print(f"router: {accepted} deliveries answered 2xx; stored {events} events ({completed} completed) "
      f"and {jobs} jobs ({queued} queued); {in_flight} requests were in flight when runs ended")
ok = accepted <= completed <= queued == jobs <= events <= accepted + in_flight
print("stored: every accepted delivery has its completed event and its queued job" if ok
      else "stored: MISMATCH")
raise SystemExit(0 if ok else 1)
