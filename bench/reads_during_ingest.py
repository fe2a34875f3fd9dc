"""Report-call latency while a big batch is ingested over HTTP into the same tenant.

The scenario of the PostgreSQL/scale issue: a tenant that already holds N users x DAYS days,
and the same tenant's full NDJSON posted again as one batch (every row merged anew), while a
client calls a daily report (302, the cached or new version) and a detail report's first
JSON page in a loop. Prints the latencies (p50, p99, max) per phase: before the batch,
while it is in flight, after. Usage (binary built with `cargo build --release`):

    python3 bench/reads_during_ingest.py [--users 60000] [--days 180] [--bin target/release/reportroot]

Python's standard library only; the numbers are what BENCHMARKS.md quotes.
"""

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

TID = "0b5c9c5e-7a5d-4a38-9d26-1e3f1e6f0d01"
REPORTS = [
    "/v1.0/reports/getOffice365ActiveUserCounts(period='D7')",
    "/v1.0/reports/getOffice365ServicesUserCounts(period='D30')",
    "/beta/reports/getOffice365ActiveUserDetail(period='D7')?$format=application/json&$top=50",
]


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=60000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--bin", default="target/release/reportroot")
    # One batch gives ~150 calls "during" (a p99 that is the second-slowest call); several
    # batches in a row, with 1 s between them counted as "between", give a steadier one.
    ap.add_argument("--batches", type=int, default=1)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rr-reads-")
    try:
        nd = os.path.join(work, "tenant.ndjson")
        data = os.path.join(work, "data")
        run([a.bin, "generate", "--tenant", TID, "--users", str(a.users), "--days", str(a.days),
             "--out", nd])
        size = os.path.getsize(nd)
        # The tenant already has data: the first load by the CLI (server stopped).
        run([a.bin, "ingest", "--data", data, "--tenant", TID, nd])
        writer = run([a.bin, "token", "--data", data, "--tenant", TID, "--app", "--roles",
                      "ReportData.ReadWrite.All", "--ttl", "6h"]).stdout.strip()
        reader = run([a.bin, "token", "--data", data, "--tenant", TID, "--app", "--ttl", "6h"]).stdout.strip()
        env = dict(os.environ, RUST_LOG="reportroot=debug")
        log = open(os.path.join(work, "serve.log"), "w")
        p = subprocess.Popen([a.bin, "serve", "--listen", "127.0.0.1:0", "--data", data,
                              "--max-body-bytes", str(size + (1 << 20))],
                             stdout=subprocess.PIPE, stderr=log, env=env, text=True)
        host = urlsplit(p.stdout.readline().strip().split(" ")[-1]).netloc
        phase = ["before"]
        lat = {"before": [], "during": [], "between": [], "after": []}
        slow = []
        stop = threading.Event()

        def reader_loop():
            c = http.client.HTTPConnection(host, timeout=600)
            i = 0
            while not stop.is_set():
                path = REPORTS[i % len(REPORTS)]
                i += 1
                ph = phase[0]
                t = time.perf_counter()
                c.request("GET", path, headers={"Authorization": "Bearer " + reader})
                r = c.getresponse()
                r.read()
                ms = (time.perf_counter() - t) * 1e3
                if r.status not in (200, 302):
                    print("unexpected", r.status, path, file=sys.stderr)
                if ph == phase[0]:
                    lat[ph].append(ms)
                    if ph == "during":
                        slow.append((ms, time.perf_counter(), path))
                time.sleep(0.005)

        th = threading.Thread(target=reader_loop)
        th.start()
        time.sleep(3)
        body = open(nd, "rb").read()
        ingest_times = []
        for b in range(a.batches):
            if b:
                phase[0] = "between"
                time.sleep(1)
            phase[0] = "during"
            t0 = time.perf_counter()
            c = http.client.HTTPConnection(host, timeout=3600)
            c.request("POST", f"/admin/v1/tenants/{TID}/ingest", body=body,
                      headers={"Authorization": "Bearer " + writer, "Content-Type": "application/x-ndjson"})
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
            ingest_times.append(time.perf_counter() - t0)
            t_end = time.perf_counter()
        ingest_s = statistics.median(ingest_times)
        phase[0] = "after"
        time.sleep(3)
        stop.set()
        th.join()
        p.terminate()
        p.wait(timeout=120)
        log.close()
        phases = [l for l in open(os.path.join(work, "serve.log")) if "batch applied" in l]
        print(f"tenant: {a.users:,} users x {a.days} days; {a.batches} batch(es) of {size / 1e6:.0f} MB, HTTP {r.status}, "
              f"{ingest_s:.1f} s end to end (median)")
        if phases:
            print("server phases:", phases[-1].strip()[-260:])
        for ms, t, path in sorted(slow, reverse=True)[:5]:
            print(f"slowest during: {ms:.1f} ms, {t - t_end:+.2f} s from the answer, {path}")
        print("| phase | calls | p50 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|")
        for ph in ("before", "during", "between", "after"):
            xs = lat[ph]
            if xs:
                print(f"| {ph} | {len(xs)} | {statistics.median(xs):.1f} | {pct(xs, 99):.1f} | {max(xs):.1f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
