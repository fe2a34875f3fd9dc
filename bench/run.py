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
BEGIN, END_MARK = "<!-- bench:begin -->", "<!-- bench:end -->"


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
    # The indexes a data engineer would add for these queries (built inside the timed load).
    con.executescript("""
        CREATE INDEX users_id ON users(id);
        CREATE INDEX licenses_uid ON licenses(uid, service);
        CREATE INDEX products_uid ON products(uid, product);
        CREATE INDEX activations_uid ON activations(uid, product);
        CREATE INDEX activity_date ON activity(date, service, uid);
    """)
    con.commit()
    return r


# The peers' SQL is what a data engineer would write against the raw tables: filters on
# the refresh date R, EXISTS against the directory (indexed in SQLite), COUNT(DISTINCT)
# over the window. Each system gets the same statements; only the load differs.

def sql_licensed(r):
    return f"""
    SELECT l.service, l.uid FROM licenses l
    WHERE l.assigned <= '{r}' AND (l.removed IS NULL OR l.removed > '{r}')
      AND EXISTS (SELECT 1 FROM users u WHERE u.id = l.uid AND (u.deleted IS NULL OR u.deleted > '{r}'))
    """


def sql_services(r, n):
    start = (datetime.date.fromisoformat(r) - datetime.timedelta(days=n - 1)).isoformat()
    return f"""
    WITH lic AS ({sql_licensed(r)}),
    act AS (SELECT a.service, a.uid FROM activity a
          WHERE a.date >= '{start}' AND a.date <= '{r}'
            AND EXISTS (SELECT 1 FROM licenses l WHERE l.uid = a.uid AND l.service = a.service
                        AND l.assigned <= '{r}' AND (l.removed IS NULL OR l.removed > '{r}'))
            AND EXISTS (SELECT 1 FROM users u WHERE u.id = a.uid AND (u.deleted IS NULL OR u.deleted > '{r}')))
    SELECT 'L', service, count(DISTINCT uid) FROM lic GROUP BY service
    UNION ALL SELECT 'A', service, count(DISTINCT uid) FROM act GROUP BY service
    UNION ALL SELECT 'L', 'office365', count(DISTINCT uid) FROM lic
    UNION ALL SELECT 'A', 'office365', count(DISTINCT uid) FROM act
    """


def sql_activations_users(r):
    live = f"a.activated <= '{r}' AND (a.deactivated IS NULL OR a.deactivated > '{r}')"
    return f"""
    SELECT p.product, count(DISTINCT p.uid),
      count(DISTINCT CASE WHEN EXISTS (SELECT 1 FROM activations a WHERE a.uid = p.uid AND a.product = p.product AND {live}) THEN p.uid END),
      count(DISTINCT CASE WHEN EXISTS (SELECT 1 FROM activations a WHERE a.uid = p.uid AND a.product = p.product AND a.shared AND {live}) THEN p.uid END)
    FROM products p
    WHERE p.assigned <= '{r}' AND (p.removed IS NULL OR p.removed > '{r}')
      AND EXISTS (SELECT 1 FROM users u WHERE u.id = p.uid AND (u.deleted IS NULL OR u.deleted > '{r}'))
    GROUP BY p.product
    """


def sql_activation_platforms(r):
    return f"""
    SELECT a.product, a.platform, count(*) FROM activations a
    WHERE a.activated <= '{r}' AND (a.deactivated IS NULL OR a.deactivated > '{r}')
      AND EXISTS (SELECT 1 FROM users u WHERE u.id = a.uid AND (u.deleted IS NULL OR u.deleted > '{r}'))
    GROUP BY a.product, a.platform
    """


def peer_reports(con, r, timings, label):
    """Runs the SQL for every report twice; returns rows shaped like reportroot's CSV."""
    out = {}
    for attempt in ("first", "repeat"):
        t0 = time.perf_counter()
        users = {p: (int(a), int(b), int(c)) for p, a, b, c in con.execute(sql_activations_users(r)).fetchall()}
        plats = {}
        for p, plat, c in con.execute(sql_activation_platforms(r)).fetchall():
            plats.setdefault(p, [0] * len(PLATFORMS))[PLATFORMS.index(plat)] = int(c)
        timings[(label, "ActivationsUserCounts+ActivationCounts", attempt)] = time.perf_counter() - t0
        products = sorted(set(users) | set(plats), key=lambda p: p.encode())
        out["ActivationsUserCounts"] = [[r, p] + [str(x) for x in users.get(p, (0, 0, 0))] for p in products]
        out["ActivationCounts"] = [[r, p] + [str(x) for x in plats.get(p, [0] * len(PLATFORMS))] for p in products]
        for n in PERIODS:
            t0 = time.perf_counter()
            res = con.execute(sql_services(r, n)).fetchall()
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
    # Peak RSS through /usr/bin/time: a child forked from this (large) Python process would
    # inherit its high-water mark across exec, so wait4's ru_maxrss overstates it.
    rss_file = os.path.join(work, "maxrss")
    run(["/usr/bin/time", "-f", "%M", "-o", rss_file, BIN, "ingest", "--data", d_cli, "--tenant", tid, nd])
    res["cli_ingest_s"] = time.perf_counter() - t0
    res["cli_ingest_peak_rss"] = int(open(rss_file).read().split()[-1]) * 1024
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

    res["serve_peak_rss"] = srv.rss()["VmHWM"]
    # Restart: SIGTERM (snapshot at shutdown), start, time to the first answered report.
    srv.stop()
    t0 = time.perf_counter()
    srv = Server(d)
    st, _, _ = req(srv.host, "GET", d180, {"Authorization": "Bearer " + reader})
    res["restart_s"] = time.perf_counter() - t0
    assert st == 302
    # Cold: the first call of each report after another restart (the tenant is loaded from
    # its snapshot before the listener opens; no report is cached).
    srv.stop()
    srv = Server(d)
    for label, path in report_paths():
        res[f"rr {label} cold_ms"] = rr_report(srv, reader, path)[0] * 1e3
    mem = srv.rss()
    res["rss_bytes"], res["hwm_bytes"] = mem["VmRSS"], mem["VmHWM"]
    srv.stop()
    res["datadir_bytes"] = du(d)
    shutil.rmtree(d, ignore_errors=True)

    # The single-date form (one line per user, service and day), as the DuckDB figure
    # was measured, at the sizes where the file stays small enough (2 GB at 100k users).
    if n <= 100_000:
        sd = os.path.join(work, f"s{n}.ndjson")
        run([BIN, "generate", "--tenant", tid, "--users", str(n), "--days", "180", "--seed", "42", "--end", END, "--single-date", "--out", sd])
        d_sd = os.path.join(work, f"sd{n}")
        t0 = time.perf_counter()
        run([BIN, "ingest", "--data", d_sd, "--tenant", tid, sd])
        res["single_cli_s"] = time.perf_counter() - t0
        shutil.rmtree(d_sd, ignore_errors=True)
        con = duckdb.connect(os.path.join(work, f"sduck{n}.db"))
        t0 = time.perf_counter()
        duck_load(con, sd)
        con.execute("CHECKPOINT")
        res["single_duck_s"] = time.perf_counter() - t0
        con.close()
        os.remove(os.path.join(work, f"sduck{n}.db"))
        res["single_records"] = sum(1 for _ in open(sd, "rb"))
        os.remove(sd)

    timings = {}
    # DuckDB
    con = duckdb.connect(os.path.join(work, f"duck{n}.db"))
    t0 = time.perf_counter()
    r = duck_load(con, nd)
    con.execute("CHECKPOINT")
    res["duck_load_s"] = time.perf_counter() - t0
    res["duck_bytes"] = os.path.getsize(os.path.join(work, f"duck{n}.db"))
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
        res["sqlite_bytes"] = os.path.getsize(db)
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
        add(f"| ingest, activity signals/s (CLI, durable) | {n:,} | {cli_rate / 1e6:.2f} M/s ({r['records'] / r['cli_ingest_s'] / 1e3:,.0f}k records/s) | {duck_rate / 1e6:.2f} M/s | {cli_rate / duck_rate:.1f}× | "
            + (f"{sq_rate / 1e6:.2f} M/s | {cli_rate / sq_rate:.1f}× |" if sq_rate else "– | – |"))
        add(f"| ingest, activity signals/s (HTTP, 200 MB batches) | {n:,} | {http_rate / 1e6:.2f} M/s | | | | |")
        if "single_cli_s" in r:
            ours, dk = r["single_records"] / r["single_cli_s"], r["single_records"] / r["single_duck_s"]
            add(f"| ingest, records/s, single-date form (one line per signal; CLI, durable) | {n:,} | {ours / 1e6:.2f} M/s | {dk / 1e6:.2f} M/s | {ours / dk:.1f}× | | |")
        for label in ["ServicesUserCounts D7", "ServicesUserCounts D30", "ServicesUserCounts D90", "ServicesUserCounts D180"]:
            # reportroot's "first" is the first call after ingest, "cold" the first after a
            # restart; both are compared with the peer's first run of the query.
            for attempt, peer_attempt, what in (("first", "first", "first call after ingest"), ("cold", "first", "first call after restart"), ("repeat", "repeat", "repeat call")):
                ours = r[f"rr {label} {attempt}_ms"] / 1e3
                dk = t[f"duckdb|{label}|{peer_attempt}"]
                sq = t.get(f"sqlite|{label}|{peer_attempt}")
                add(f"| {label}, {what} | {n:,} | {fmt_ms(ours)} | {fmt_ms(dk)} | {dk / ours:,.0f}× | "
                    + (f"{fmt_ms(sq)} | {sq / ours:,.0f}× |" if sq else "– | – |"))
        for attempt, peer_attempt, what in (("first", "first", "first call after ingest"), ("cold", "first", "first call after restart"), ("repeat", "repeat", "repeat call")):
            ours = (r[f"rr ActivationsUserCounts {attempt}_ms"] + r[f"rr ActivationCounts {attempt}_ms"]) / 1e3
            dk = t[f"duckdb|ActivationsUserCounts+ActivationCounts|{peer_attempt}"]
            sq = t.get(f"sqlite|ActivationsUserCounts+ActivationCounts|{peer_attempt}")
            add(f"| both activation reports, {what} | {n:,} | {fmt_ms(ours)} | {fmt_ms(dk)} | {dk / ours:,.0f}× | "
                + (f"{fmt_ms(sq)} | {sq / ours:,.0f}× |" if sq else "– | – |"))
        add(f"| report call (302, token verified) req/s vs nginx static CSV | {n:,} | {r['rps_report']:,.0f} (p99 {r['p99_report_ms']:.1f} ms) | nginx {r['rps_nginx']:,.0f} | {r['rps_report'] / r['rps_nginx'] * 100:.0f}% of nginx | | |")
        add(f"| download req/s vs nginx | {n:,} | {r['rps_download']:,.0f} (p99 {r['p99_download_ms']:.1f} ms) | nginx {r['rps_nginx']:,.0f} | {r['rps_download'] / r['rps_nginx'] * 100:.0f}% of nginx | | |")
        add(f"| server RSS after restart and all reports, bytes/user | {n:,} | {r['rss_bytes'] / n:,.0f} (peak since restart {r['hwm_bytes'] / n:,.0f}) | | | | |")
        add(f"| peak RSS, bytes/user: `ingest` CLI / server during HTTP ingest | {n:,} | {r['cli_ingest_peak_rss'] / n:,.0f} / {r['serve_peak_rss'] / n:,.0f} | | | | |")
        sq_b = r.get("sqlite_bytes")
        add(f"| data on disk, bytes/user | {n:,} | {r['datadir_bytes'] / n:,.0f} | {r['duck_bytes'] / n:,.0f} | {r['duck_bytes'] / r['datadir_bytes']:.1f}× | "
            + (f"{sq_b / n:,.0f} | {sq_b / r['datadir_bytes']:.1f}× |" if sq_b else "– | – |"))
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
        # The generated part goes between the markers, so the prose around it survives re-runs.
        block = (f"{BEGIN}\n<!-- generated by `bench/run --out {os.path.basename(a.out)}` on "
                 f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; do not edit by hand -->\n"
                 f"Machine: {machine()}.\n\n{t}\n{END_MARK}")
        old = open(a.out).read() if os.path.exists(a.out) else ""
        if BEGIN in old and END_MARK in old:
            text = old[:old.index(BEGIN)] + block + old[old.index(END_MARK) + len(END_MARK):]
        else:
            text = old + ("\n" if old else "") + block + "\n"
        with open(a.out, "w") as f:
            f.write(text)
        with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
            f.write(raw)
    print("bench: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
