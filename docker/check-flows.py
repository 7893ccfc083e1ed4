#!/usr/bin/python3
"""Check what one compose profile delivered (docker/run.sh flows).

--logs FILE: the aggregators' files (message bodies, one per line): every
sequence number 1..N of the one producer exactly once, nothing else.
--valid FILE, --rejected FILE: the validator's two outputs as the file sink's
records (JSON with headers and body): every download event dl-1..dl-M exactly
once over both, each rejected one with its reason in x-ferry-error, no valid
one with a reason.
Exit 0 when all holds, 1 with every problem listed otherwise.
"""
import argparse
import collections
import json
import re
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--logs", required=True)
ap.add_argument("--expect-logs", type=int, required=True)
ap.add_argument("--valid", required=True)
ap.add_argument("--rejected", required=True)
ap.add_argument("--expect-events", type=int, required=True)
a = ap.parse_args()
problems = []


def read_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


# --- logs ---------------------------------------------------------------
seqs = collections.Counter()
producers = set()
for n, line in enumerate(read_lines(a.logs), 1):
    try:
        body = json.loads(line)
        seqs[int(body["seq"])] += 1
        producers.add(body["producer"])
    except (ValueError, KeyError, TypeError) as e:
        problems.append(f"logs line {n}: not a log envelope with producer and seq ({e}): {line[:120]}")
if len(producers) > 1:
    problems.append(f"logs: {len(producers)} producers, expected one")
missing = [s for s in range(1, a.expect_logs + 1) if seqs[s] == 0]
twice = {s: c for s, c in seqs.items() if c > 1}
extra = [s for s in seqs if not 1 <= s <= a.expect_logs]
if missing:
    problems.append(f"logs: {len(missing)} of {a.expect_logs} missing, first {missing[:10]}")
if twice:
    problems.append(f"logs: {len(twice)} delivered more than once: {sorted(twice)[:10]}")
if extra:
    problems.append(f"logs: unexpected seq {sorted(extra)[:10]}")
print(f"logs: {sum(seqs.values())} lines, {len(seqs)} distinct of {a.expect_logs}")


# --- events -------------------------------------------------------------
def records(path, what):
    out = []
    for n, line in enumerate(read_lines(path), 1):
        try:
            r = json.loads(line)
        except ValueError as e:
            problems.append(f"{what} line {n}: not a JSON record ({e}): {line[:120]}")
            continue
        if not isinstance(r, dict) or "body" not in r:
            problems.append(f"{what} line {n}: no body in the record: {line[:120]}")
            continue
        body = r["body"] if isinstance(r["body"], str) else json.dumps(r["body"])
        m = re.search(r"\bdl-(\d+)\b", body)
        if not m:
            problems.append(f"{what} line {n}: no event id dl-N in the body: {body[:120]}")
            continue
        headers = r.get("headers") or {}
        out.append((int(m.group(1)), headers.get("x-ferry-error"), body))
    return out


seen = collections.Counter()
valid = records(a.valid, "valid")
rejected = records(a.rejected, "rejected")
for eid, reason, body in valid:
    seen[eid] += 1
    if reason:
        problems.append(f"valid dl-{eid} carries x-ferry-error {reason!r}")
reasons = collections.Counter()
for eid, reason, body in rejected:
    seen[eid] += 1
    if not reason or not str(reason).strip():
        problems.append(f"rejected dl-{eid} has no x-ferry-error reason: {body[:120]}")
    else:
        reasons[re.sub(r"\d+(\.\d+)?", "N", str(reason))[:60]] += 1
missing = [e for e in range(1, a.expect_events + 1) if seen[e] == 0]
twice = sorted(e for e, c in seen.items() if c > 1)
extra = sorted(e for e in seen if not 1 <= e <= a.expect_events)
if missing:
    problems.append(f"events: {len(missing)} of {a.expect_events} missing, first {missing[:10]}")
if twice:
    problems.append(f"events: {len(twice)} delivered more than once: {twice[:10]}")
if extra:
    problems.append(f"events: unexpected ids {extra[:10]}")
if not rejected:
    problems.append("events: nothing rejected (the producer sends 10 % invalid events)")
print(f"events: {len(valid)} valid, {len(rejected)} rejected, {len(seen)} distinct of {a.expect_events}")
for r, c in reasons.most_common(8):
    print(f"  rejected x{c}: {r}")
for p in problems:
    print(f"FAIL: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
