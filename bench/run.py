"""reportroot vs DuckDB vs SQLite on the same tenants (see bench/run)."""
import argparse, datetime, http.client, json, os, platform, re, shutil, signal, sqlite3, subprocess, sys, tempfile, time
from urllib.parse import urlsplit

import duckdb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "reportroot")
SERVICES = ["exchange", "oneDrive", "sharePoint", "skypeForBusiness", "yammer", "teams"]
PLATFORMS = ["windows", "mac", "android", "ios", "windows10Mobile"]
PERIODS = [7, 30, 90, 180]
END = "2026-10-31"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def du(path):
    return int(run(["du", "-sb", path]).stdout.split()[0])


# ---------------------------------------------------------------- reportroot


class Server:
    def __init__(self, data):
        self.data = data
        env = dict(os.environ, RUST_LOG="warn")
        self.p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data", data], stdout=subprocess.PIPE, env=env, text=True)
        self.base = self.p.stdout.readline().strip().split(" ")[-1]
        self.host = urlsplit(self.base).netloc

    def rss(self):
        out = {}
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) * 1024
        return out

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=120)


def req(host, method, path, headers=None, body=None):
    c = http.client.HTTPConnection(host, timeout=600)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Location"), data


def report_paths():
    paths = [("ActivationsUserCounts", "/v1.0/reports/getOffice365ActivationsUserCounts"), ("ActivationCounts", "/v1.0/reports/getOffice365ActivationCounts")]
    paths += [(f"ServicesUserCounts D{n}", f"/v1.0/reports/getOffice365ServicesUserCounts(period='D{n}')") for n in PERIODS]
    return paths


def rr_report(srv, token, path):
    """Times the report call (302) and returns (seconds, csv rows)."""
    t0 = time.perf_counter()
    st, loc, _ = req(srv.host, "GET", path, {"Authorization": "Bearer " + token})
    dt = time.perf_counter() - t0
    assert st == 302, (path, st)
    st, _, body = req(srv.host, "GET", urlsplit(loc).path)
    assert st == 200 and body.startswith(b"\xef\xbb\xbf")
    rows = [l.split(",") for l in body[3:].decode().split("\r\n")[1:] if l]
    return dt, rows


def split_batches(path, limit):
    """Splits an NDJSON file into bodies of at most `limit` bytes at user boundaries."""
    cur, size = [], 0
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b'{"type":"user"') and size + len(line) > limit * 0.9 and cur:
                yield b"".join(cur)
                cur, size = [], 0
            cur.append(line)
            size += len(line)
    if cur:
        yield b"".join(cur)


# ---------------------------------------------------------------- SQL peers

DUCK_COLUMNS = {
    "type": "VARCHAR", "id": "VARCHAR", "deletedDate": "VARCHAR", "userId": "VARCHAR", "service": "VARCHAR",
    "assignedDate": "VARCHAR", "removedDate": "VARCHAR", "productType": "VARCHAR", "deviceId": "VARCHAR",
    "platform": "VARCHAR", "activatedDate": "VARCHAR", "deactivatedDate": "VARCHAR", "sharedComputer": "BOOLEAN",
    "date": "VARCHAR", "dates": "VARCHAR[]",
}


def duck_load(con, path):
    cols = ", ".join(f"'{k}': '{v}'" for k, v in DUCK_COLUMNS.items())
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_ndjson('{path}', columns={{{cols}}}, maximum_object_size=16777216)")
    con.execute("CREATE TABLE users AS SELECT id, deletedDate AS deleted FROM raw WHERE type='user'")
    con.execute("CREATE TABLE licenses AS SELECT userId AS uid, service, assignedDate AS assigned, removedDate AS removed FROM raw WHERE type='serviceLicense'")
    con.execute("CREATE TABLE products AS SELECT userId AS uid, productType AS product, assignedDate AS assigned, removedDate AS removed FROM raw WHERE type='productAssignment'")
    con.execute("CREATE TABLE activations AS SELECT userId AS uid, productType AS product, platform, activatedDate AS activated, deactivatedDate AS deactivated, sharedComputer AS shared FROM raw WHERE type='activation'")
    con.execute("CREATE TABLE activity AS SELECT userId AS uid, service, unnest(dates) AS date FROM raw WHERE type='activity' AND dates IS NOT NULL UNION ALL SELECT userId, service, date FROM raw WHERE type='activity' AND date IS NOT NULL")
    r = con.execute("SELECT max(date) FROM raw WHERE type='refresh'").fetchone()[0]
    con.execute("DROP TABLE raw")
    return r


def sqlite_load(con, path):
    con.executescript("""
        CREATE TABLE users(id TEXT, deleted TEXT);
        CREATE TABLE licenses(uid TEXT, service TEXT, assigned TEXT, removed TEXT);
        CREATE TABLE products(uid TEXT, product TEXT, assigned TEXT, removed TEXT);
        CREATE TABLE activations(uid TEXT, product TEXT, platform TEXT, activated TEXT, deactivated TEXT, shared INTEGER);
        CREATE TABLE activity(uid TEXT, service TEXT, date TEXT);
    """)
    rows = {k: [] for k in ("user", "serviceLicense", "productAssignment", "activation", "activity")}
    r = None
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            t = o["type"]
            if t == "user":
                rows[t].append((o["id"], o.get("deletedDate")))
            elif t == "serviceLicense":
                rows[t].append((o["userId"], o["service"], o["assignedDate"], o.get("removedDate")))
            elif t == "productAssignment":
                rows[t].append((o["userId"], o["productType"], o["assignedDate"], o.get("removedDate")))
            elif t == "activation":
                rows[t].append((o["userId"], o["productType"], o["platform"], o["activatedDate"], o.get("deactivatedDate"), int(o["sharedComputer"])))
            elif t == "activity":
                for d in o.get("dates") or [o.get("date")]:
                    rows[t].append((o["userId"], o["service"], d))
            elif t == "refresh":
                r = o["date"]
    con.executemany("INSERT INTO users VALUES (?,?)", rows["user"])
    con.executemany("INSERT INTO licenses VALUES (?,?,?,?)", rows["serviceLicense"])
    con.executemany("INSERT INTO products VALUES (?,?,?,?)", rows["productAssignment"])
    con.executemany("INSERT INTO activations VALUES (?,?,?,?,?,?)", rows["activation"])
    con.executemany("INSERT INTO activity VALUES (?,?,?)", rows["activity"])
    con.execute("CREATE INDEX activity_svc_date ON activity(service, date)")
    con.commit()
    return r


def sql_services_portable(r, n):
    start = (datetime.date.fromisoformat(r) - datetime.timedelta(days=n - 1)).isoformat()
    return f"""
    WITH u AS MATERIALIZED (SELECT id FROM users WHERE deleted IS NULL OR deleted > '{r}'),
    l AS MATERIALIZED (SELECT DISTINCT uid, service FROM licenses
          WHERE assigned <= '{r}' AND (removed IS NULL OR removed > '{r}') AND uid IN (SELECT id FROM u)),
    a AS MATERIALIZED (SELECT DISTINCT act.uid, act.service FROM activity act
          JOIN l ON l.uid = act.uid AND l.service = act.service
          WHERE act.date >= '{start}' AND act.date <= '{r}')
    SELECT 'L', service, count(*) FROM l GROUP BY service
    UNION ALL SELECT 'A', service, count(*) FROM a GROUP BY service
    UNION ALL SELECT 'L', 'office365', count(DISTINCT uid) FROM l
    UNION ALL SELECT 'A', 'office365', count(DISTINCT uid) FROM a
    """


def sql_activations(r):
    plat = ", ".join(f"sum(CASE WHEN platform = '{x}' THEN 1 ELSE 0 END) AS {x}" for x in PLATFORMS)
    return f"""
    WITH u AS MATERIALIZED (SELECT id FROM users WHERE deleted IS NULL OR deleted > '{r}'),
    held AS MATERIALIZED (SELECT DISTINCT uid, product FROM products
          WHERE assigned <= '{r}' AND (removed IS NULL OR removed > '{r}') AND uid IN (SELECT id FROM u)),
    act AS MATERIALIZED (SELECT uid, product, platform, shared FROM activations
          WHERE activated <= '{r}' AND (deactivated IS NULL OR deactivated > '{r}') AND uid IN (SELECT id FROM u)),
    au AS MATERIALIZED (SELECT uid, product, max(CASE WHEN shared THEN 1 ELSE 0 END) AS any_shared FROM act GROUP BY uid, product),
    counts AS (SELECT product, {plat} FROM act GROUP BY product),
    hs AS (SELECT h.product, count(*) AS assigned, count(au.uid) AS activated, sum(CASE WHEN au.any_shared = 1 THEN 1 ELSE 0 END) AS shared
           FROM held h LEFT JOIN au ON au.uid = h.uid AND au.product = h.product GROUP BY h.product),
    prods AS (SELECT product FROM held UNION SELECT product FROM act)
    SELECT p.product, coalesce(hs.assigned, 0), coalesce(hs.activated, 0), coalesce(hs.shared, 0),
           {", ".join(f"coalesce(c.{x}, 0)" for x in PLATFORMS)}
    FROM prods p LEFT JOIN hs ON hs.product = p.product LEFT JOIN counts c ON c.product = p.product
    ORDER BY p.product
    """


def peer_reports(con, r, timings, label):
    """Runs the SQL for every report twice; returns rows shaped like reportroot's CSV."""
    out = {}
    for attempt in ("first", "repeat"):
        t0 = time.perf_counter()
        rows = con.execute(sql_activations(r)).fetchall()
        timings[(label, "ActivationsUserCounts+ActivationCounts", attempt)] = time.perf_counter() - t0
        out["ActivationsUserCounts"] = [[r, p, str(int(a)), str(int(b)), str(int(c))] for p, a, b, c, *_ in rows]
        out["ActivationCounts"] = [[r, p] + [str(int(x)) for x in rest] for p, _a, _b, _c, *rest in rows]
        for n in PERIODS:
            t0 = time.perf_counter()
            res = con.execute(sql_services_portable(r, n)).fetchall()
            timings[(label, f"ServicesUserCounts D{n}", attempt)] = time.perf_counter() - t0
            by = {(kind, s): int(c) for kind, s, c in res}
            row = [r]
            for s in SERVICES + ["office365"]:
                lic, act = by.get(("L", s), 0), by.get(("A", s), 0)
                row += [str(act), str(lic - act)]
            row.append(str(n))
            out[f"ServicesUserCounts D{n}"] = [row]
    return out


# ---------------------------------------------------------------- load

def wrk(url, seconds, token=None):
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    script = None
    if token:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
        script.close()
        args += ["-s", script.name]
    out = run(args + [url]).stdout
    if script:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert not bad, out
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return rps, float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")


def nginx_rps(csv_bytes, seconds):
    d = tempfile.mkdtemp(prefix="rr-nginx-")
    os.chmod(d, 0o755)  # nginx workers run as an unprivileged user
    with open(os.path.join(d, "report.csv"), "wb") as f:
        f.write(csv_bytes)
    os.chmod(os.path.join(d, "report.csv"), 0o644)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"worker_processes 2; pid {d}/nginx.pid; error_log {d}/error.log; daemon on;\n"
                f"events {{ worker_connections 1024; }}\n"
                f"http {{ access_log off; server {{ listen 127.0.0.1:18999; root {d}; }} }}\n")
    run(["nginx", "-c", conf])
    time.sleep(0.5)
    try:
        return wrk("http://127.0.0.1:18999/report.csv", seconds)
    finally:
        run(["nginx", "-c", conf, "-s", "stop"])
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- main

def bench_size(n, work, smoke):
    tid = "be0c0000-0000-4000-8000-%012d" % n
    res = {"users": n}
    nd = os.path.join(work, f"t{n}.ndjson")
    t0 = time.perf_counter()
    g = run([BIN, "generate", "--tenant", tid, "--users", str(n), "--days", "180", "--seed", "42", "--end", END, "--out", nd])
    res["generate_s"] = time.perf_counter() - t0
    m = re.search(r"(\d+) records, (\d+) activity signals", g.stderr)
    res["records"], res["signals"] = int(m.group(1)), int(m.group(2))
    res["ndjson_bytes"] = os.path.getsize(nd)
    print(f"[{n}] generated {res['records']} records, {res['signals']} signals, {res['ndjson_bytes'] / 1e6:.0f} MB", flush=True)

    # CLI ingest (durable: SQLite WAL with synchronous=FULL, one transaction per file).
    d_cli = os.path.join(work, f"cli{n}")
    t0 = time.perf_counter()
    run([BIN, "ingest", "--data", d_cli, "--tenant", tid, nd])
    res["cli_ingest_s"] = time.perf_counter() - t0
    shutil.rmtree(d_cli, ignore_errors=True)

    # HTTP ingest in batches of at most 200 MB.
    d = os.path.join(work, f"http{n}")
    srv = Server(d)
    writer = run([BIN, "token", "--data", d, "--tenant", tid, "--app", "--roles", "ReportData.ReadWrite.All", "--ttl", "6h"]).stdout.strip()
    reader = run([BIN, "token", "--data", d, "--tenant", tid, "--app", "--ttl", "6h"]).stdout.strip()
    t0 = time.perf_counter()
    for body in split_batches(nd, 200 << 20):
        st, _, out = req(srv.host, "POST", f"/admin/v1/tenants/{tid}/ingest", {"Authorization": "Bearer " + writer, "Content-Type": "application/x-ndjson"}, body)
        assert st == 200, out
    res["http_ingest_s"] = time.perf_counter() - t0

    rr = {}
    for label, path in report_paths():
        first, rows = rr_report(srv, reader, path)
        reps = sorted(rr_report(srv, reader, path)[0] for _ in range(20))
        rr[label] = rows
        res[f"rr {label} first_ms"] = first * 1e3
        res[f"rr {label} repeat_ms"] = reps[len(reps) // 2] * 1e3

    # Throughput: report call with a valid token on every request, download, nginx ceiling.
    secs = 3 if smoke else 10
    d180 = "/v1.0/reports/getOffice365ServicesUserCounts(period='D180')"
    res["rps_report"], res["p99_report_ms"] = wrk(srv.base + d180, secs, reader)
    st, loc, _ = req(srv.host, "GET", d180, {"Authorization": "Bearer " + reader})
    res["rps_download"], res["p99_download_ms"] = wrk(loc, secs)
    _, _, csv_bytes = req(srv.host, "GET", urlsplit(loc).path)
    res["rps_nginx"], res["p99_nginx_ms"] = nginx_rps(csv_bytes, secs)

    # Restart: SIGTERM (snapshot at shutdown), start, time to the first answered report.
    srv.stop()
    t0 = time.perf_counter()
    srv = Server(d)
    st, _, _ = req(srv.host, "GET", d180, {"Authorization": "Bearer " + reader})
    res["restart_s"] = time.perf_counter() - t0
    assert st == 302
    for label, path in report_paths():
        rr_report(srv, reader, path)
    mem = srv.rss()
    res["rss_bytes"], res["hwm_bytes"] = mem["VmRSS"], mem["VmHWM"]
    srv.stop()
    res["datadir_bytes"] = du(d)
    shutil.rmtree(d, ignore_errors=True)

    timings = {}
    # DuckDB
    con = duckdb.connect(os.path.join(work, f"duck{n}.db"))
    t0 = time.perf_counter()
    r = duck_load(con, nd)
    con.execute("CHECKPOINT")
    res["duck_load_s"] = time.perf_counter() - t0
    duck = peer_reports(con, r, timings, "duckdb")
    con.close()
    peers = {"duckdb": duck}
    # SQLite at 10k and 100k only.
    if n <= 100_000:
        db = os.path.join(work, f"sqlite{n}.db")
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode=WAL")
        t0 = time.perf_counter()
        r2 = sqlite_load(con, nd)
        res["sqlite_load_s"] = time.perf_counter() - t0
        peers["sqlite"] = peer_reports(con, r2, timings, "sqlite")
        con.close()
    for peer, got in peers.items():
        for label, rows in rr.items():
            if got[label] != rows:
                print(f"MISMATCH {peer} {label}\n reportroot: {rows[:5]}\n {peer}: {got[label][:5]}", flush=True)
                raise SystemExit(1)
    res["identical"] = "yes (" + ", ".join(["reportroot"] + list(peers)) + ")"
    res["timings"] = {f"{a}|{b}|{c}": v for (a, b, c), v in timings.items()}
    os.remove(nd)
    print(f"[{n}] done", flush=True)
    return res


def fmt_ms(s):
    return f"{s * 1e3:.1f} ms" if s < 10 else f"{s:.1f} s"


def table(results):
    lines = []
    add = lines.append
    add("| metric | users | reportroot | DuckDB | ratio | SQLite | ratio |")
    add("|---|---|---|---|---|---|---|")
    for r in results:
        n = r["users"]
        t = r["timings"]
        sig = r["signals"]
        cli_rate, http_rate = sig / r["cli_ingest_s"], sig / r["http_ingest_s"]
        duck_rate = sig / r["duck_load_s"]
        sq_rate = sig / r["sqlite_load_s"] if "sqlite_load_s" in r else None
        add(f"| ingest, activity signals/s (CLI, durable) | {n:,} | {cli_rate / 1e6:.2f} M/s | {duck_rate / 1e6:.2f} M/s | {cli_rate / duck_rate:.1f}× | "
            + (f"{sq_rate / 1e6:.2f} M/s | {cli_rate / sq_rate:.1f}× |" if sq_rate else "– | – |"))
        add(f"| ingest, activity signals/s (HTTP, 200 MB batches) | {n:,} | {http_rate / 1e6:.2f} M/s | | | | |")
        for label in ["ServicesUserCounts D7", "ServicesUserCounts D30", "ServicesUserCounts D90", "ServicesUserCounts D180"]:
            for attempt in ("first", "repeat"):
                ours = r[f"rr {label} {attempt}_ms"] / 1e3
                dk = t[f"duckdb|{label}|{attempt}"]
                sq = t.get(f"sqlite|{label}|{attempt}")
                add(f"| {label}, {attempt} call | {n:,} | {fmt_ms(ours)} | {fmt_ms(dk)} | {dk / ours:,.0f}× | "
                    + (f"{fmt_ms(sq)} | {sq / ours:,.0f}× |" if sq else "– | – |"))
        for attempt in ("first", "repeat"):
            ours = (r[f"rr ActivationsUserCounts {attempt}_ms"] + r[f"rr ActivationCounts {attempt}_ms"]) / 1e3
            dk = t[f"duckdb|ActivationsUserCounts+ActivationCounts|{attempt}"]
            sq = t.get(f"sqlite|ActivationsUserCounts+ActivationCounts|{attempt}")
            add(f"| both activation reports, {attempt} call | {n:,} | {fmt_ms(ours)} | {fmt_ms(dk)} | {dk / ours:,.0f}× | "
                + (f"{fmt_ms(sq)} | {sq / ours:,.0f}× |" if sq else "– | – |"))
        add(f"| report call (302, token verified) req/s vs nginx static CSV | {n:,} | {r['rps_report']:,.0f} (p99 {r['p99_report_ms']:.1f} ms) | nginx {r['rps_nginx']:,.0f} | {r['rps_report'] / r['rps_nginx'] * 100:.0f}% of nginx | | |")
        add(f"| download req/s vs nginx | {n:,} | {r['rps_download']:,.0f} (p99 {r['p99_download_ms']:.1f} ms) | nginx {r['rps_nginx']:,.0f} | {r['rps_download'] / r['rps_nginx'] * 100:.0f}% of nginx | | |")
        add(f"| server RSS after restart and all reports, bytes/user | {n:,} | {r['rss_bytes'] / n:,.0f} (peak {r['hwm_bytes'] / n:,.0f}) | | | | |")
        add(f"| data dir, bytes/user | {n:,} | {r['datadir_bytes'] / n:,.0f} | | | | |")
        add(f"| restart → first report answered | {n:,} | {fmt_ms(r['restart_s'])} | | | | |")
        add(f"| identical numbers | {n:,} | {r['identical']} | | | | |")
    return "\n".join(lines)


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = int(open("/proc/meminfo").read().split()[1]) // 1024 // 1024
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, Linux {platform.release()}, Python {platform.python_version()}, DuckDB {duckdb.__version__}, SQLite {sqlite3.sqlite_version}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="10k users only, short load runs (CI)")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--out", default=None, help="write the table to this Markdown file")
    ap.add_argument("--work", default=None, help="scratch dir (default: a temp dir)")
    a = ap.parse_args()
    sizes = [10000] if a.smoke else [int(x) for x in a.sizes.split(",")]
    work = a.work or tempfile.mkdtemp(prefix="rr-bench-")
    os.makedirs(work, exist_ok=True)
    results = []
    try:
        for n in sizes:
            results.append(bench_size(n, work, a.smoke))
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    t = table(results)
    print(t)
    raw = json.dumps(results, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(f"<!-- generated by `bench/run --out {os.path.basename(a.out)}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC -->\n")
            f.write(f"Machine: {machine()}.\n\n{t}\n")
        with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
            f.write(raw)
    print("bench: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
