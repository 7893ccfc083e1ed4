#!/usr/bin/python3
"""Baseline (a) of the postgresql sink benchmark: the way the replaced
systems write logs, psycopg2 executemany of INSERT ... ON CONFLICT DO
NOTHING in batches of 100, one commit each, over the same rows.
Usage: pg-psycopg2-bench.py CONNINFO SOURCE_TABLE TARGET_TABLE [BATCH]
Prints "rows=N seconds=S rows_per_s=R"."""
import sys
import time

import psycopg2

conninfo, src, dst = sys.argv[1:4]
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 100
conn = psycopg2.connect(conninfo)
cur = conn.cursor()
cur.execute(f"SELECT id, destination, routing_key, headers::text, body::text FROM {src}")
rows = cur.fetchall()
cur.execute(f"CREATE TABLE IF NOT EXISTS {dst} (id text PRIMARY KEY, received_at timestamptz NOT NULL, "
            "destination text, routing_key text, headers jsonb, body jsonb)")
conn.commit()
sql = (f"INSERT INTO {dst} (id, received_at, destination, routing_key, headers, body) "
       "VALUES (%s, now(), %s, %s, %s::jsonb, %s::jsonb) ON CONFLICT (id) DO NOTHING")
t0 = time.monotonic()
for i in range(0, len(rows), batch):
    cur.executemany(sql, rows[i:i + batch])
    conn.commit()
s = time.monotonic() - t0
print(f"rows={len(rows)} seconds={s:.3f} rows_per_s={len(rows) / s:.0f}")
