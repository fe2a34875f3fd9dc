"""reportroot vs DuckDB vs SQLite on the same tenants (see bench/run)."""
import argparse, csv, datetime, http.client, itertools, json, os, platform, re, shutil, signal, sqlite3, subprocess, sys, tempfile, time
from urllib.parse import urlsplit, urlunsplit

import duckdb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# REPORTROOT_BIN points the bench at another build (bench/run then skips its cargo build).
BIN = os.environ.get("REPORTROOT_BIN") or os.path.join(ROOT, "target", "release", "reportroot")
SERVICES = ["exchange", "oneDrive", "sharePoint", "skypeForBusiness", "yammer", "teams"]
PLATFORMS = ["windows", "mac", "android", "ios", "windows10Mobile"]
PERIODS = [7, 30, 90, 180]
END = "2026-10-31"
BEGIN, END_MARK = "<!-- bench:begin -->", "<!-- bench:end -->"
# Every child runs without REPORTROOT_DATABASE_URL: the bench passes --database-url where it
# means PostgreSQL, and a URL left in the caller's shell would put the SQLite side on it.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "REPORTROOT_DATABASE_URL"}


def run(cmd, **kw):
    kw.setdefault("env", CHILD_ENV)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def du(path):
    return int(run(["du", "-sb", path]).stdout.split()[0])


# ---------------------------------------------------------------- reportroot


class Server:
    def __init__(self, data, database_url=None):
        self.data = data
        env = dict(CHILD_ENV, RUST_LOG="warn")
        db = ["--database-url", database_url] if database_url else []
        self.p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data", data] + db, stdout=subprocess.PIPE, env=env, text=True)
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
    paths += [(f"ActiveUserCounts D{n}", f"/v1.0/reports/getOffice365ActiveUserCounts(period='D{n}')") for n in PERIODS]
    return paths


def detail_path(n):
    return f"/v1.0/reports/getOffice365ActiveUserDetail(period='D{n}')"


# The detail report is timed at D180 (the most deleted users listed); all periods are compared.
DETAIL_PERIODS = [180, 7, 30, 90]


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


def rr_detail(srv, token, path, out_path):
    """A detail report as a client gets it: the report call (302; the server computes the CSV
    into a spool file before answering), then the download streamed to a file. Returns the
    call time, the download's time to first body byte and to the last byte, and its size."""
    t0 = time.perf_counter()
    st, loc, body = req(srv.host, "GET", path, {"Authorization": "Bearer " + token})
    call = time.perf_counter() - t0
    assert st == 302, (path, st, body[:500])
    u = urlsplit(loc)
    c = http.client.HTTPConnection(srv.host, timeout=600)
    t1 = time.perf_counter()
    c.request("GET", u.path + ("?" + u.query if u.query else ""))
    r = c.getresponse()
    assert r.status == 200, (loc, r.status)
    size, ttfb = 0, None
    with open(out_path, "wb") as f:
        while True:
            chunk = r.read1(1 << 20)
            if not chunk:
                break
            if ttfb is None:
                ttfb = time.perf_counter() - t1
            f.write(chunk)
            size += len(chunk)
    total = time.perf_counter() - t1
    c.close()
    return {"call_s": call, "ttfb_s": ttfb, "download_s": total, "bytes": size}


def reset_hwm(pid):
    """Resets the process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


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
    "type": "VARCHAR", "id": "VARCHAR", "userPrincipalName": "VARCHAR", "displayName": "VARCHAR", "deletedDate": "VARCHAR", "userId": "VARCHAR", "service": "VARCHAR",
    "assignedDate": "VARCHAR", "removedDate": "VARCHAR", "productType": "VARCHAR", "deviceId": "VARCHAR",
    "platform": "VARCHAR", "activatedDate": "VARCHAR", "deactivatedDate": "VARCHAR", "sharedComputer": "BOOLEAN",
    "date": "VARCHAR", "dates": "VARCHAR[]",
}


def duck_load(con, path):
    cols = ", ".join(f"'{k}': '{v}'" for k, v in DUCK_COLUMNS.items())
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_ndjson('{path}', columns={{{cols}}}, maximum_object_size=16777216)")
    # Tables keep the file's order (DuckDB preserves insertion order): rowid is the line order.
    con.execute("CREATE TABLE users AS SELECT id, deletedDate AS deleted, userPrincipalName AS upn, displayName AS name FROM raw WHERE type='user'")
    con.execute("CREATE TABLE licenses AS SELECT userId AS uid, service, assignedDate AS assigned, removedDate AS removed FROM raw WHERE type='serviceLicense'")
    con.execute("CREATE TABLE products AS SELECT userId AS uid, productType AS product, assignedDate AS assigned, removedDate AS removed FROM raw WHERE type='productAssignment'")
    con.execute("CREATE TABLE activations AS SELECT userId AS uid, productType AS product, platform, activatedDate AS activated, deactivatedDate AS deactivated, sharedComputer AS shared FROM raw WHERE type='activation'")
    con.execute("CREATE TABLE activity AS SELECT userId AS uid, service, unnest(dates) AS date FROM raw WHERE type='activity' AND dates IS NOT NULL UNION ALL SELECT userId, service, date FROM raw WHERE type='activity' AND date IS NOT NULL")
    r = con.execute("SELECT max(date) FROM raw WHERE type='refresh'").fetchone()[0]
    con.execute("DROP TABLE raw")
    return r


def sqlite_load(con, path):
    con.executescript("""
        CREATE TABLE users(id TEXT, deleted TEXT, upn TEXT, name TEXT);
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
                rows[t].append((o["id"], o.get("deletedDate"), o.get("userPrincipalName"), o.get("displayName")))
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
    con.executemany("INSERT INTO users VALUES (?,?,?,?)", rows["user"])
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


def day_minus(r, k):
    return (datetime.date.fromisoformat(r) - datetime.timedelta(days=k)).isoformat()


def sql_active_counts(r, n):
    """ActiveUserCounts(Dn): per day and service, users active that day among those licensed
    for it on R; Office 365: active that day in any service they are licensed for."""
    return f"""
    WITH act AS (SELECT a.date, a.service, a.uid FROM activity a
          WHERE a.date >= '{day_minus(r, n - 1)}' AND a.date <= '{r}'
            AND EXISTS (SELECT 1 FROM licenses l WHERE l.uid = a.uid AND l.service = a.service
                        AND l.assigned <= '{r}' AND (l.removed IS NULL OR l.removed > '{r}'))
            AND EXISTS (SELECT 1 FROM users u WHERE u.id = a.uid AND (u.deleted IS NULL OR u.deleted > '{r}')))
    SELECT date, service, count(DISTINCT uid) FROM act GROUP BY date, service
    UNION ALL SELECT date, 'office365', count(DISTINCT uid) FROM act GROUP BY date
    """


DETAIL_SERVICES = [("exchange", "Exchange"), ("oneDrive", "OneDrive"), ("sharePoint", "SharePoint"),
                   ("skypeForBusiness", "Skype For Business"), ("yammer", "Yammer"), ("teams", "Teams")]


def sql_detail(r, n, engine):
    """ActiveUserDetail(Dn) as CSV-ready text columns, in the order the users first appeared.
    Rows: users existing on R plus those deleted in R-n+1 … R. A later record with the same key
    replaces an earlier one (the latest row per key wins; a user keeps its first position)."""
    start = day_minus(r, n - 1)
    held = f"assigned <= '{r}' AND (removed IS NULL OR removed > '{r}')"
    if engine == "duckdb":
        products = "string_agg(product, '+' ORDER BY product)"
        prod_src = "products"
    else:  # SQLite 3.40 has no ORDER BY inside aggregates: concatenate from an ordered subquery
        products = "group_concat(product, '+')"
        prod_src = None
    lic_cols = ",\n        ".join(f"max(CASE WHEN service = '{s}' THEN assigned END) AS a_{s}" for s, _ in DETAIL_SERVICES)
    act_cols = ",\n        ".join(f"max(CASE WHEN service = '{s}' THEN date END) AS d_{s}" for s, _ in DETAIL_SERVICES)
    prod_latest = f"""SELECT uid, product FROM (
          SELECT uid, product, assigned, removed, row_number() OVER (PARTITION BY uid, product ORDER BY rowid DESC) AS rn
          FROM products) p WHERE rn = 1 AND {held}"""
    if prod_src is None:
        prod_latest += " ORDER BY uid, product"
    cols = [f"'{r}' AS \"Report Refresh Date\"", "u.upn AS \"User Principal Name\"", "u.name AS \"Display Name\"",
            f"CASE WHEN u.deleted <= '{r}' THEN 'True' ELSE 'False' END AS \"Is Deleted\"",
            f"CASE WHEN u.deleted <= '{r}' THEN u.deleted END AS \"Deleted Date\""]
    cols += [f"CASE WHEN l.a_{s} IS NULL THEN 'False' ELSE 'True' END AS \"Has {h} License\"" for s, h in DETAIL_SERVICES]
    cols += [f"a.d_{s} AS \"{h} Last Activity Date\"" for s, h in DETAIL_SERVICES]
    cols += [f"l.a_{s} AS \"{h} License Assign Date\"" for s, h in DETAIL_SERVICES]
    cols += ["p.products AS \"Assigned Products\""]
    select = ",\n      ".join(cols)
    return f"""
    WITH u AS (
      SELECT id, upn, name, deleted, seq0 FROM (
        SELECT id, upn, name, deleted, min(rowid) OVER (PARTITION BY id) AS seq0,
               row_number() OVER (PARTITION BY id ORDER BY rowid DESC) AS rn
        FROM users) x
      WHERE rn = 1 AND (deleted IS NULL OR deleted >= '{start}')),
    lic AS (
      SELECT uid, service, assigned FROM (
        SELECT uid, service, assigned, removed, row_number() OVER (PARTITION BY uid, service ORDER BY rowid DESC) AS rn
        FROM licenses) x
      WHERE rn = 1 AND {held}),
    l AS (SELECT uid,
        {lic_cols}
      FROM lic GROUP BY uid),
    a AS (SELECT uid,
        {act_cols}
      FROM activity WHERE date <= '{r}' GROUP BY uid),
    p AS (SELECT uid, {products} AS products FROM ({prod_latest}) x GROUP BY uid)
    SELECT
      {select}
    FROM u LEFT JOIN l ON l.uid = u.id LEFT JOIN a ON a.uid = u.id LEFT JOIN p ON p.uid = u.id
    ORDER BY u.seq0
    """


def peer_detail_main(engine, db, r, out_dir, periods):
    """Child process (`run.py --peer-detail ...`, under /usr/bin/time for its peak RSS): writes
    ActiveUserDetail(Dn) to {out_dir}/{engine}_D{n}.csv for each period, the first period twice
    (first and repeat run), and prints the timings as JSON."""
    times = {}
    if engine == "duckdb":
        con = duckdb.connect(db, read_only=True)
    else:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    runs = [(periods[0], "first"), (periods[0], "repeat")] + [(p, "first") for p in periods[1:]]
    for n, attempt in runs:
        out = os.path.join(out_dir, f"{engine}_D{n}.csv")
        t0 = time.perf_counter()
        if engine == "duckdb":
            # DuckDB writes the CSV itself (its fastest path to a file of all rows).
            con.execute(f"COPY ({sql_detail(r, n, engine)}) TO '{out}' (HEADER, DELIMITER ',')")
        else:
            cur = con.execute(sql_detail(r, n, engine))
            with open(out, "w", newline="") as f:
                w = csv.writer(f, lineterminator="\r\n")
                w.writerow([d[0] for d in cur.description])
                while True:
                    rows = cur.fetchmany(10000)
                    if not rows:
                        break
                    w.writerows(rows)
        times[f"D{n} {attempt}"] = time.perf_counter() - t0
    con.close()
    print(json.dumps(times))


def peer_detail(engine, db, r, work, periods):
    """Runs the detail queries in a fresh process; returns (timings, peak RSS bytes)."""
    rss_file = os.path.join(work, "maxrss")
    out = run(["/usr/bin/time", "-f", "%M", "-o", rss_file, sys.executable, os.path.abspath(__file__),
               "--peer-detail", engine, db, r, work, ",".join(str(p) for p in periods)]).stdout
    return json.loads(out.strip().splitlines()[-1]), int(open(rss_file).read().split()[-1]) * 1024


def compare_csv(rr_path, peer_path, header=True):
    """Row-for-row comparison of reportroot's download with a peer's CSV, streaming (flat
    memory at 1M rows). Returns (data rows, None) or (row index, description of the first difference).
    header=False: the header rows are not compared (the peer's columns are positional)."""
    with open(rr_path, "rb") as f:
        head = f.readline()
    if not head.startswith(b"\xef\xbb\xbf") or not head.endswith(b"\r\n"):
        return 0, f"reportroot CSV does not start with a BOM or its header line does not end with CRLF: {head!r}"
    with open(rr_path, newline="", encoding="utf-8-sig") as a, open(peer_path, newline="", encoding="utf-8-sig") as b:
        rows = -1
        for rows, (x, y) in enumerate(itertools.zip_longest(csv.reader(a), csv.reader(b))):
            if rows == 0 and not header:
                continue
            if x != y:
                return rows, f"row {rows} (0 = header)\n reportroot: {x}\n peer:       {y}"
    return rows, None


def peer_reports(con, r, timings, label, counts=True):
    """Runs the SQL for every report twice (ActiveUserCounts only if `counts`); returns rows
    shaped like reportroot's CSV."""
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
        for n in PERIODS:
            if not counts:
                break
            t0 = time.perf_counter()
            res = con.execute(sql_active_counts(r, n)).fetchall()
            timings[(label, f"ActiveUserCounts D{n}", attempt)] = time.perf_counter() - t0
            by = {(d, s): int(c) for d, s, c in res}
            rows = []
            for i in range(n):
                day = day_minus(r, i)
                rows.append([r] + [str(by.get((day, s), 0)) for s in ["office365"] + SERVICES] + [day, str(n)])
            out[f"ActiveUserCounts D{n}"] = rows
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


# ---------------------------------------------------------------- PostgreSQL store

def pg_sql(url, sql):
    """One statement through psql (on the machine wherever PostgreSQL is); its output, unaligned."""
    return run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql]).stdout.strip()


def pg_database_url(admin_url, name):
    """The admin URL with its database replaced by `name` (user, host, port and query kept)."""
    u = urlsplit(admin_url)
    return urlunsplit(u._replace(path="/" + name))


def pg_rows_check(label, rows, want, where):
    """Stops the run when a report's rows from the PostgreSQL store differ from the SQLite store's."""
    if rows != want:
        i = next((i for i, (a, b) in enumerate(zip(want, rows)) if a != b), min(len(want), len(rows)))
        print(f"MISMATCH postgresql ({where}) {label}: {len(want)} rows on the SQLite store, {len(rows)} on PostgreSQL; "
              f"first difference at row {i}\n reportroot (SQLite store): {want[i:i + 3]}\n reportroot (PostgreSQL store): {rows[i:i + 3]}", flush=True)
        raise SystemExit(1)


def bench_pg(n, work, tid, nd, admin_url, rr):
    """reportroot on a PostgreSQL store, in a database of its own made for this size: the CLI
    ingest of the same NDJSON (durable: one transaction per file, then the tenant's snapshot
    written into the database), a server started on the database with an empty data dir (the
    tenant comes from the database's snapshot) timed like the SQLite side, then a fresh node:
    another server with another empty data dir, timed from its start to the first answered
    report. Every report's rows must equal the SQLite store's (`rr`); the run stops otherwise."""
    res = {}
    name = f"reportroot_bench_{n}"
    url = pg_database_url(admin_url, name)
    pg_sql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    pg_sql(admin_url, f"CREATE DATABASE {name}")
    srv = None
    try:
        d_ing = os.path.join(work, f"pgcli{n}")
        rss_file = os.path.join(work, "maxrss")
        t0 = time.perf_counter()
        run(["/usr/bin/time", "-f", "%M", "-o", rss_file, BIN, "ingest", "--database-url", url, "--data", d_ing, "--tenant", tid, nd])
        res["pg_ingest_s"] = time.perf_counter() - t0
        res["pg_ingest_peak_rss"] = int(open(rss_file).read().split()[-1]) * 1024
        shutil.rmtree(d_ing, ignore_errors=True)
        res["pg_bytes"] = int(pg_sql(admin_url, f"SELECT pg_database_size('{name}')"))
        print(f"[{n}] PostgreSQL CLI ingest {res['pg_ingest_s']:.1f} s", flush=True)

        # A server on the database with an empty data dir (it reads the tenant from the
        # database's snapshot as it starts): the first call of each report, then the median
        # of 20 repeats.
        d1 = os.path.join(work, f"pgsrv{n}")
        srv = Server(d1, url)
        reader = run([BIN, "token", "--database-url", url, "--data", d1, "--tenant", tid, "--app", "--ttl", "6h"]).stdout.strip()
        for label, path in report_paths():
            first, rows = rr_report(srv, reader, path)
            pg_rows_check(label, rows, rr[label], "first server")
            reps = sorted(rr_report(srv, reader, path)[0] for _ in range(20))
            res[f"pg {label} first_ms"] = first * 1e3
            res[f"pg {label} repeat_ms"] = reps[len(reps) // 2] * 1e3
        srv.stop()
        srv = None
        shutil.rmtree(d1, ignore_errors=True)

        # Fresh node: another empty data dir on the same database, timed from the process
        # start to the first answered report (302), with the token minted above (the signing
        # keys are in the database). Then the first call of every other report there.
        d2 = os.path.join(work, f"pgfresh{n}")
        d180 = "ServicesUserCounts D180"
        t0 = time.perf_counter()
        srv = Server(d2, url)
        res["pg_fresh_listen_s"] = time.perf_counter() - t0
        dt, rows = rr_report(srv, reader, dict(report_paths())[d180])
        res["pg_fresh_first_report_s"] = res["pg_fresh_listen_s"] + dt
        res[f"pg {d180} fresh_ms"] = dt * 1e3
        pg_rows_check(d180, rows, rr[d180], "fresh node")
        for label, path in report_paths():
            if label == d180:
                continue
            dt, rows = rr_report(srv, reader, path)
            res[f"pg {label} fresh_ms"] = dt * 1e3
            pg_rows_check(label, rows, rr[label], "fresh node")
        mem = srv.rss()
        res["pg_rss_bytes"], res["pg_hwm_bytes"] = mem["VmRSS"], mem["VmHWM"]
        srv.stop()
        srv = None
        shutil.rmtree(d2, ignore_errors=True)
        res["pg_identical"] = True
        print(f"[{n}] PostgreSQL store: fresh node → first report {res['pg_fresh_first_report_s'] * 1e3:.0f} ms; "
              f"identical rows (reportroot on SQLite and on PostgreSQL, {len(report_paths())} reports, both servers)", flush=True)
    finally:
        if srv is not None:
            srv.p.kill()
            srv.p.wait()
        pg_sql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return res


# ---------------------------------------------------------------- main

def bench_size(n, work, smoke, pg_url=None):
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
    # Detail reports conceal names by default; turn that off so the names can be compared.
    settings = run([BIN, "token", "--data", d, "--tenant", tid, "--app", "--roles", "ReportSettings.ReadWrite.All", "--ttl", "6h"]).stdout.strip()
    st, _, out = req(srv.host, "PATCH", "/v1.0/admin/reportSettings", {"Authorization": "Bearer " + settings, "Content-Type": "application/json"}, b'{"displayConcealedNames": false}')
    assert st == 204, (st, out)

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

    # Detail report, on this restarted server (its peak RSS is not the ingest's): the peak
    # is reset, then D180 is called and downloaded; the increase of the peak over the RSS
    # before is what the report and its download cost in memory.
    det = os.path.join(work, f"detail{n}")
    os.makedirs(det, exist_ok=True)
    res["detail_hwm_reset"] = reset_hwm(srv.p.pid)
    before = srv.rss()
    m = rr_detail(srv, reader, detail_path(180), os.path.join(det, "rr_D180.csv"))
    after = srv.rss()
    res.update({f"detail D180 first {k}": v for k, v in m.items()})
    res["detail rss_before"], res["detail hwm_before"] = before["VmRSS"], before["VmHWM"]
    res["detail rss_after"], res["detail hwm_after"] = after["VmRSS"], after["VmHWM"]
    reps = [rr_detail(srv, reader, detail_path(180), os.path.join(det, "rr_D180.csv")) for _ in range(3)]
    for k in ("call_s", "ttfb_s", "download_s"):
        res[f"detail D180 repeat {k}"] = sorted(x[k] for x in reps)[1]
    for p in DETAIL_PERIODS[1:]:
        m = rr_detail(srv, reader, detail_path(p), os.path.join(det, f"rr_D{p}.csv"))
        res.update({f"detail D{p} first {k}": v for k, v in m.items()})
    res["detail hwm_after_all"] = srv.rss()["VmHWM"]
    print(f"[{n}] detail D180: call {m_ms(res['detail D180 first call_s'])}, first byte {m_ms(res['detail D180 first ttfb_s'])}, "
          f"download {m_ms(res['detail D180 first download_s'])}, {res['detail D180 first bytes'] / 1e6:.1f} MB, "
          f"peak RSS {before['VmRSS'] / 2**20:.0f} -> {after['VmHWM'] / 2**20:.0f} MiB", flush=True)
    srv.stop()
    res["datadir_bytes"] = du(d)
    shutil.rmtree(d, ignore_errors=True)

    # The same on a PostgreSQL store (bench_pg), when a server was given or found.
    if pg_url:
        res.update(bench_pg(n, work, tid, nd, pg_url, rr))

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
    detail_peers = []
    t, res["duck_detail_peak_rss"] = peer_detail("duckdb", os.path.join(work, f"duck{n}.db"), r, det, DETAIL_PERIODS)
    res.update({f"duckdb detail {k}": v for k, v in t.items()})
    res["detail_rows"] = check_detail("duckdb", det, n)
    detail_peers.append("duckdb")
    os.remove(os.path.join(work, f"duck{n}.db"))
    # SQLite at 10k and 100k only.
    if n <= 100_000:
        db = os.path.join(work, f"sqlite{n}.db")
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode=WAL")
        t0 = time.perf_counter()
        r2 = sqlite_load(con, nd)
        res["sqlite_load_s"] = time.perf_counter() - t0
        # The reports added with the detail (ActiveUserCounts, ActiveUserDetail) run on SQLite
        # at 10k only: at 100k each of their queries takes a minute or more.
        peers["sqlite"] = peer_reports(con, r2, timings, "sqlite", counts=n <= SQLITE_NEW_MAX)
        con.close()
        res["sqlite_bytes"] = os.path.getsize(db)
        if n <= SQLITE_NEW_MAX:
            t, res["sqlite_detail_peak_rss"] = peer_detail("sqlite", db, r2, det, DETAIL_PERIODS)
            res.update({f"sqlite detail {k}": v for k, v in t.items()})
            assert check_detail("sqlite", det, n) == res["detail_rows"]
            detail_peers.append("sqlite")
        os.remove(db)
    for peer, got in peers.items():
        for label, rows in rr.items():
            if label not in got:
                continue
            if got[label] != rows:
                print(f"MISMATCH {peer} {label}\n reportroot: {rows[:5]}\n {peer}: {got[label][:5]}", flush=True)
                raise SystemExit(1)
    res["identical"] = "yes (" + ", ".join(["reportroot"] + list(peers)) + ")"
    if any(label not in got for got in peers.values() for label in rr):
        res["identical"] = res["identical"][:-1] + "; SQLite without ActiveUserCounts)"
    res["identical_detail"] = "yes (" + ", ".join(["reportroot"] + detail_peers) + f"; {res['detail_rows']:,} rows at D180)"
    shutil.rmtree(det, ignore_errors=True)
    res["timings"] = {f"{a}|{b}|{c}": v for (a, b, c), v in timings.items()}
    os.remove(nd)
    print(f"[{n}] done", flush=True)
    return res


SQLITE_NEW_MAX = 10_000


def check_detail(peer, det, n):
    """Stops the run on the first row where the peer's detail CSV differs from reportroot's;
    returns the number of rows at D180."""
    out = None
    for p in DETAIL_PERIODS:
        rows, diff = compare_csv(os.path.join(det, f"rr_D{p}.csv"), os.path.join(det, f"{peer}_D{p}.csv"))
        if diff:
            print(f"MISMATCH {peer} ActiveUserDetail D{p}: {diff}", flush=True)
            raise SystemExit(1)
        os.remove(os.path.join(det, f"{peer}_D{p}.csv"))
        if p == 180:
            out = rows
    print(f"[{n}] detail identical: reportroot, {peer} (D{', D'.join(map(str, DETAIL_PERIODS))}; {out:,} rows at D180)", flush=True)
    return out


def m_ms(s):
    return f"{s * 1e3:.1f} ms"


def fmt_ms(s):
    return f"{s * 1e3:.1f} ms" if s < 10 else f"{s:.1f} s"


def detail_rows(r, add):
    n = r["users"]
    mib = lambda b: f"{b / 2**20:,.0f} MiB"
    first, rep = (r[f"detail D180 {a} call_s"] for a in ("first", "repeat"))
    add(f"ActiveUserDetail D180, report call (302 once the CSV is in a spool file), first after restart / repeat", n, f"{fmt_ms(first)} / {fmt_ms(rep)}")
    add(f"ActiveUserDetail D180, download ({r['detail D180 first bytes'] / 1e6:,.1f} MB, {r['detail_rows']:,} rows): first byte / whole, first after restart", n,
        f"{fmt_ms(r['detail D180 first ttfb_s'])} / {fmt_ms(r['detail D180 first download_s'])}")
    for attempt, what in (("first", "first (peers: first query in a fresh process)"), ("repeat", "repeat")):
        ours = r[f"detail D180 {attempt} call_s"] + r[f"detail D180 {attempt} download_s"]
        dk = r[f"duckdb detail D180 {attempt}"]
        sq = r.get(f"sqlite detail D180 {attempt}")
        add(f"ActiveUserDetail D180, call + whole download vs query → CSV file, {what}", n, fmt_ms(ours), dk=fmt_ms(dk), ratio=f"{dk / ours:,.1f}×",
            sq=fmt_ms(sq) if sq else "–", sq_ratio=f"{sq / ours:,.1f}×" if sq else "–")
    peak = r["detail hwm_after"]
    rise = peak - r["detail rss_before"]
    dk = r["duck_detail_peak_rss"]
    sq = r.get("sqlite_detail_peak_rss")
    add(f"ActiveUserDetail D180, peak RSS: server during call + download (rise over its RSS before) / peer process", n,
        f"{mib(peak)} (+{mib(rise)}, {rise / n:,.0f} bytes/user)", dk=mib(dk), ratio=f"{dk / peak:.1f}×",
        sq=mib(sq) if sq else "–", sq_ratio=f"{sq / peak:.1f}×" if sq else "–")


def table(results):
    """The main table. Columns: reportroot on its SQLite store, reportroot on a PostgreSQL
    store (bench_pg; "–" where the run had none, blank where the row has no PostgreSQL
    figure), DuckDB, its ratio to each store, SQLite and its ratio to the SQLite store.
    Ratios: the peer's time over reportroot's, or reportroot's rate over the peer's."""
    lines = ["| metric | users | reportroot, SQLite store | reportroot, PostgreSQL store | DuckDB | ratio | ratio (PostgreSQL) | SQLite | ratio |",
             "|---|---|---|---|---|---|---|---|---|"]

    def add(metric, n, ours, pg="", dk="", ratio="", pg_ratio="", sq="", sq_ratio=""):
        cells = [metric, f"{n:,}", ours, pg, dk, ratio, pg_ratio, sq, sq_ratio]
        lines.append("|" + "|".join(f" {c} " if c else " " for c in cells) + "|")

    for r in results:
        n = r["users"]
        t = r["timings"]
        sig = r["signals"]
        has_pg = "pg_ingest_s" in r
        cli_rate, http_rate = sig / r["cli_ingest_s"], sig / r["http_ingest_s"]
        duck_rate = sig / r["duck_load_s"]
        sq_rate = sig / r["sqlite_load_s"] if "sqlite_load_s" in r else None
        pg_rate = sig / r["pg_ingest_s"] if has_pg else None
        add("ingest, activity signals/s (CLI, durable)", n, f"{cli_rate / 1e6:.2f} M/s ({r['records'] / r['cli_ingest_s'] / 1e3:,.0f}k records/s)",
            pg=f"{pg_rate / 1e6:.2f} M/s ({r['records'] / r['pg_ingest_s'] / 1e3:,.0f}k records/s)" if has_pg else "–",
            dk=f"{duck_rate / 1e6:.2f} M/s", ratio=f"{cli_rate / duck_rate:.1f}×", pg_ratio=f"{pg_rate / duck_rate:.1f}×" if has_pg else "–",
            sq=f"{sq_rate / 1e6:.2f} M/s" if sq_rate else "–", sq_ratio=f"{cli_rate / sq_rate:.1f}×" if sq_rate else "–")
        verdict = lambda x, goal: f"{x:.2f}×: " + ("met" if x >= goal else "**missed**")
        add("ingest, CLI, SQLite store vs DuckDB: ratio (goal ≥ 2×)", n, verdict(cli_rate / duck_rate, 2))
        add("ingest, CLI, PostgreSQL store vs DuckDB: ratio (goal ≥ 1×)", n, "", pg=verdict(pg_rate / duck_rate, 1) if has_pg else "–")
        add("ingest, activity signals/s (HTTP, 200 MB batches)", n, f"{http_rate / 1e6:.2f} M/s")
        if "single_cli_s" in r:
            ours, dk = r["single_records"] / r["single_cli_s"], r["single_records"] / r["single_duck_s"]
            add("ingest, records/s, single-date form (one line per signal; CLI, durable)", n, f"{ours / 1e6:.2f} M/s", dk=f"{dk / 1e6:.2f} M/s", ratio=f"{ours / dk:.1f}×")

        # reportroot's "first" is the first call after ingest, "cold" the first after a restart
        # (on PostgreSQL: the first call on a fresh node); both are compared with the peer's
        # first run of the query.
        attempts = (("first", "first", "first", "first call after ingest"), ("cold", "fresh", "first", "first call after restart"),
                    ("repeat", "repeat", "repeat", "repeat call"))

        def report_row(label, ours, pg, dk, sq):
            add(label, n, fmt_ms(ours), pg=fmt_ms(pg) if pg is not None else "–", dk=fmt_ms(dk), ratio=f"{dk / ours:,.0f}×",
                pg_ratio=f"{dk / pg:,.0f}×" if pg is not None else "–",
                sq=fmt_ms(sq) if sq else "–", sq_ratio=f"{sq / ours:,.0f}×" if sq else "–")

        def summary_rows(labels):
            for label in labels:
                for attempt, pg_attempt, peer_attempt, what in attempts:
                    pg = r.get(f"pg {label} {pg_attempt}_ms")
                    report_row(f"{label}, {what}", r[f"rr {label} {attempt}_ms"] / 1e3, pg / 1e3 if pg is not None else None,
                               t[f"duckdb|{label}|{peer_attempt}"], t.get(f"sqlite|{label}|{peer_attempt}"))

        summary_rows(["ServicesUserCounts D7", "ServicesUserCounts D30", "ServicesUserCounts D90", "ServicesUserCounts D180"])
        for attempt, pg_attempt, peer_attempt, what in attempts:
            ours = (r[f"rr ActivationsUserCounts {attempt}_ms"] + r[f"rr ActivationCounts {attempt}_ms"]) / 1e3
            pg = (r[f"pg ActivationsUserCounts {pg_attempt}_ms"] + r[f"pg ActivationCounts {pg_attempt}_ms"]) / 1e3 if has_pg else None
            report_row(f"both activation reports, {what}", ours, pg, t[f"duckdb|ActivationsUserCounts+ActivationCounts|{peer_attempt}"],
                       t.get(f"sqlite|ActivationsUserCounts+ActivationCounts|{peer_attempt}"))
        if "rr ActiveUserCounts D7 first_ms" in r:
            summary_rows(["ActiveUserCounts D7", "ActiveUserCounts D180"])
        if "detail D180 first call_s" in r:
            detail_rows(r, add)
        add("report call (302, token verified) req/s vs nginx static CSV", n, f"{r['rps_report']:,.0f} (p99 {r['p99_report_ms']:.1f} ms)",
            dk=f"nginx {r['rps_nginx']:,.0f}", ratio=f"{r['rps_report'] / r['rps_nginx'] * 100:.0f}% of nginx")
        add("download req/s vs nginx", n, f"{r['rps_download']:,.0f} (p99 {r['p99_download_ms']:.1f} ms)",
            dk=f"nginx {r['rps_nginx']:,.0f}", ratio=f"{r['rps_download'] / r['rps_nginx'] * 100:.0f}% of nginx")
        add("server RSS after restart and all reports, bytes/user", n, f"{r['rss_bytes'] / n:,.0f} (peak since restart {r['hwm_bytes'] / n:,.0f})",
            pg=f"{r['pg_rss_bytes'] / n:,.0f} (peak since start {r['pg_hwm_bytes'] / n:,.0f})" if has_pg else "–")
        add("peak RSS, bytes/user: `ingest` CLI / server during HTTP ingest", n, f"{r['cli_ingest_peak_rss'] / n:,.0f} / {r['serve_peak_rss'] / n:,.0f}",
            pg=f"{r['pg_ingest_peak_rss'] / n:,.0f} / –" if has_pg else "–")
        sq_b = r.get("sqlite_bytes")
        add("data on disk, bytes/user", n, f"{r['datadir_bytes'] / n:,.0f}", pg=f"{r['pg_bytes'] / n:,.0f}" if has_pg else "–",
            dk=f"{r['duck_bytes'] / n:,.0f}", ratio=f"{r['duck_bytes'] / r['datadir_bytes']:.1f}×",
            pg_ratio=f"{r['duck_bytes'] / r['pg_bytes']:.1f}×" if has_pg else "–",
            sq=f"{sq_b / n:,.0f}" if sq_b else "–", sq_ratio=f"{sq_b / r['datadir_bytes']:.1f}×" if sq_b else "–")
        add("restart → first report answered", n, fmt_ms(r["restart_s"]))
        add("fresh node (empty data dir, same database) → first report answered (goal ≤ 3 s at 1M users)", n, "",
            pg=f"{fmt_ms(r['pg_fresh_first_report_s'])} (listening after {fmt_ms(r['pg_fresh_listen_s'])})" if has_pg else "–")
        add("identical numbers", n, r["identical"],
            pg=f"yes (rows equal the SQLite store's: {len(report_paths())} reports, both servers)" if r.get("pg_identical") else "–")
        if "identical_detail" in r:
            add("identical ActiveUserDetail CSV, row for row, D7/D30/D90/D180", n, r["identical_detail"])
    return "\n".join(lines)


# ---------------------------------------------------------------- workload families
# Email activity, email app usage, mailbox usage, OneDrive and SharePoint usage, on a tenant
# generated with `--usage` (activityCounts, emailClients, mailbox/mailboxDay, site/siteDay),
# beside DuckDB answering the same question with SQL over the same NDJSON (README semantics).

W_BEGIN, W_END = "<!-- bench-workloads:begin -->", "<!-- bench-workloads:end -->"

USAGE_COLUMNS = dict(DUCK_COLUMNS, **{
    "workload": "VARCHAR", "send": "BIGINT", "receive": "BIGINT", "read": "BIGINT", "meetingCreated": "BIGINT",
    "meetingInteracted": "BIGINT", "viewedOrEdited": "BIGINT", "synced": "BIGINT", "sharedInternally": "BIGINT",
    "sharedExternally": "BIGINT", "visitedPages": "BIGINT",
    "createdDate": "VARCHAR", "recipientType": "VARCHAR", "issueWarningQuota": "BIGINT", "prohibitSendQuota": "BIGINT",
    "prohibitSendReceiveQuota": "BIGINT", "deletedItemQuota": "BIGINT", "hasArchive": "BOOLEAN",
    "itemCount": "BIGINT", "storageUsed": "BIGINT", "deletedItemCount": "BIGINT", "deletedItemSize": "BIGINT",
    "kind": "VARCHAR", "url": "VARCHAR", "ownerId": "VARCHAR", "rootWebTemplate": "VARCHAR", "siteId": "VARCHAR",
    "fileCount": "BIGINT", "activeFileCount": "BIGINT", "pageViewCount": "BIGINT", "visitedPageCount": "BIGINT",
    "storageAllocated": "BIGINT", "clients": "VARCHAR[]", "outlookVersion": "VARCHAR",
})
COUNTERS = {"exchange": ["send", "receive", "read", "meetingCreated", "meetingInteracted"],
            "oneDrive": ["viewedOrEdited", "synced", "sharedInternally", "sharedExternally"],
            "sharePoint": ["viewedOrEdited", "synced", "sharedInternally", "sharedExternally", "visitedPages"]}
ALL_COUNTERS = ["send", "receive", "read", "meetingCreated", "meetingInteracted", "viewedOrEdited", "synced",
                "sharedInternally", "sharedExternally", "visitedPages"]
EMAIL_APPS = ["mailForMac", "outlookForMac", "outlookForWindows", "outlookForMobile", "otherForMobile",
              "outlookForWeb", "pop3App", "imap4App", "smtpApp"]


def duck_usage_settings(con):
    """DuckDB 2.0 turns an ASOF join with a small estimated side (under 64 rows) into a nested
    loop join; its estimate for the day grid is ~50 rows, and the mailbox query then ran for
    minutes at 10k users instead of seconds. Threshold 0 keeps the ASOF join."""
    con.execute("SET asof_loop_join_threshold = 0")


def duck_load_usage(con, path):
    """The richer tenant into DuckDB: the core tables of `duck_load` plus one table per usage
    record type, columns as in the NDJSON (no deduplication: the queries apply the keys)."""
    cols = ", ".join(f"'{k}': '{v}'" for k, v in USAGE_COLUMNS.items())
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_ndjson('{path}', columns={{{cols}}}, maximum_object_size=16777216)")
    con.execute("CREATE TABLE users AS SELECT id, deletedDate AS deleted, userPrincipalName AS upn, displayName AS name FROM raw WHERE type='user'")
    con.execute("CREATE TABLE licenses AS SELECT userId AS uid, service, assignedDate AS assigned, removedDate AS removed FROM raw WHERE type='serviceLicense'")
    con.execute("CREATE TABLE products AS SELECT userId AS uid, productType AS product, assignedDate AS assigned, removedDate AS removed FROM raw WHERE type='productAssignment'")
    con.execute("CREATE TABLE activations AS SELECT userId AS uid, productType AS product, platform, activatedDate AS activated, deactivatedDate AS deactivated, sharedComputer AS shared FROM raw WHERE type='activation'")
    con.execute("CREATE TABLE activity AS SELECT userId AS uid, service, unnest(dates) AS date FROM raw WHERE type='activity' AND dates IS NOT NULL UNION ALL SELECT userId, service, date FROM raw WHERE type='activity' AND date IS NOT NULL")
    counters = ", ".join(f"coalesce({c}, 0) AS {c}" for c in ALL_COUNTERS)
    con.execute(f"CREATE TABLE counts AS SELECT userId AS uid, workload, date, {counters} FROM raw WHERE type='activityCounts'")
    con.execute("CREATE TABLE mailboxes AS SELECT userId AS uid, createdDate AS created, deletedDate AS deleted, recipientType AS rtype, "
                "issueWarningQuota AS warn, prohibitSendQuota AS send_q, prohibitSendReceiveQuota AS sendrecv_q, deletedItemQuota AS del_q, hasArchive AS archive FROM raw WHERE type='mailbox'")
    con.execute("CREATE TABLE mailbox_days AS SELECT userId AS uid, date, itemCount AS items, storageUsed AS storage, deletedItemCount AS del_items, deletedItemSize AS del_size FROM raw WHERE type='mailboxDay'")
    con.execute("CREATE TABLE sites AS SELECT id, kind, url, ownerId AS owner, rootWebTemplate AS template, createdDate AS created, deletedDate AS deleted FROM raw WHERE type='site'")
    con.execute("CREATE TABLE site_days AS SELECT siteId AS site, date, fileCount AS files, activeFileCount AS active_files, pageViewCount AS views, visitedPageCount AS visited, storageUsed AS storage, storageAllocated AS allocated FROM raw WHERE type='siteDay'")
    con.execute("CREATE TABLE email_clients AS SELECT userId AS uid, date, clients, outlookVersion AS version FROM raw WHERE type='emailClients'")
    r = con.execute("SELECT max(date) FROM raw WHERE type='refresh'").fetchone()[0]
    con.execute("DROP TABLE raw")
    return r


def w_users(r):
    """The latest record per user id, with the position of its first (the user's ordinal)."""
    return """SELECT id, upn, name, deleted, seq0 FROM (
        SELECT id, upn, name, deleted, min(rowid) OVER (PARTITION BY id) AS seq0,
               row_number() OVER (PARTITION BY id ORDER BY rowid DESC) AS rn FROM users) x WHERE rn = 1"""


def w_live(r):
    return f"SELECT id FROM ({w_users(r)}) u WHERE u.deleted IS NULL OR u.deleted > '{r}'"


def w_counts(workload, first, r):
    """activityCounts of one workload in first … R, the latest record per user and day."""
    cols = ", ".join(COUNTERS[workload])
    return f"""SELECT uid, date, {cols} FROM counts WHERE workload = '{workload}' AND date >= '{first}' AND date <= '{r}'
        QUALIFY row_number() OVER (PARTITION BY uid, date ORDER BY rowid DESC) = 1"""


def w_last_activity(service, r):
    """Latest activity date ≤ R per user in a service: `activity` records, plus every
    activityCounts record with a non-zero counter (the README: that is activity too)."""
    nz = " OR ".join(f"{c} > 0" for c in COUNTERS[service])
    return f"""SELECT uid, max(date) AS last FROM (
        SELECT uid, date FROM activity WHERE service = '{service}' AND date <= '{r}'
        UNION ALL SELECT uid, date FROM counts WHERE workload = '{service}' AND date <= '{r}' AND ({nz})) x GROUP BY uid"""


def w_days(first, n):
    return f"SELECT CAST(DATE '{first}' + CAST(i AS INTEGER) AS VARCHAR) AS d FROM range({n}) t(i)"


def sql_email_activity_counts(r, n):
    first = day_minus(r, n - 1)
    sums = ", ".join(f"sum(c.{c})" for c in COUNTERS["exchange"])
    return f"""WITH live AS ({w_live(r)}), c AS ({w_counts('exchange', first, r)})
    SELECT c.date, {sums} FROM c JOIN live ON live.id = c.uid GROUP BY c.date"""


def sql_email_app_user_counts(r, n):
    first = day_minus(r, n - 1)
    return f"""WITH live AS ({w_live(r)}),
    ec AS (SELECT uid, date, clients FROM email_clients WHERE date >= '{first}' AND date <= '{r}'
           QUALIFY row_number() OVER (PARTITION BY uid, date ORDER BY rowid DESC) = 1)
    SELECT date, client, count(DISTINCT uid) FROM (SELECT uid, date, unnest(clients) AS client FROM ec) x
    WHERE uid IN (SELECT id FROM live) GROUP BY date, client"""


def w_mailboxes(r):
    """The latest `mailbox` per user with the earlier of its and its user's deletion dates."""
    return f"""SELECT mb.*, u.upn, u.name, u.seq0,
        CASE WHEN mb.deleted IS NULL THEN u.deleted WHEN u.deleted IS NULL THEN mb.deleted ELSE least(mb.deleted, u.deleted) END AS del
      FROM (SELECT * FROM mailboxes QUALIFY row_number() OVER (PARTITION BY uid ORDER BY rowid DESC) = 1) mb
      JOIN ({w_users(r)}) u ON u.id = mb.uid"""


def sql_quota_status_counts(r, n):
    first = day_minus(r, n - 1)
    # MATERIALIZED: DuckDB 2.0 fails to bind (internal error) a rowid window joined on an
    # inequality with the day grid unless the CTE is materialised.
    return f"""WITH m AS MATERIALIZED ({w_mailboxes(r)}),
    g AS (SELECT m.uid, m.warn, m.send_q, m.sendrecv_q, days.d FROM m, ({w_days(first, n)}) days
          WHERE m.created <= days.d AND (m.del IS NULL OR m.del > days.d)),
    st AS (SELECT uid, date, storage FROM mailbox_days WHERE date <= '{r}'
           QUALIFY row_number() OVER (PARTITION BY uid, date ORDER BY rowid DESC) = 1),
    j AS (SELECT g.*, st.date AS sd, st.storage FROM g ASOF LEFT JOIN st ON g.uid = st.uid AND g.d >= st.date)
    SELECT d, CASE WHEN sd IS NULL OR (warn = 0 AND send_q = 0 AND sendrecv_q = 0) THEN 4
                   WHEN sendrecv_q > 0 AND storage >= sendrecv_q THEN 3
                   WHEN send_q > 0 AND storage >= send_q THEN 2
                   WHEN warn > 0 AND storage >= warn THEN 1 ELSE 0 END AS status, count(*)
    FROM j GROUP BY d, status"""


def w_sites(kind):
    return f"""SELECT * FROM (SELECT *, min(rowid) OVER (PARTITION BY id) AS seq0,
        row_number() OVER (PARTITION BY id ORDER BY rowid DESC) AS rn FROM sites) x WHERE rn = 1 AND kind = '{kind}'"""


def sql_site_storage(kind, r, n):
    first = day_minus(r, n - 1)
    return f"""WITH s AS MATERIALIZED ({w_sites(kind)}),
    g AS (SELECT s.id, days.d FROM s, ({w_days(first, n)}) days WHERE s.created <= days.d AND (s.deleted IS NULL OR s.deleted > days.d)),
    st AS (SELECT site, date, storage FROM site_days WHERE date <= '{r}'
           QUALIFY row_number() OVER (PARTITION BY site, date ORDER BY rowid DESC) = 1)
    SELECT g.d, sum(coalesce(st.storage, 0)) FROM g ASOF LEFT JOIN st ON g.id = st.site AND g.d >= st.date GROUP BY g.d"""


def sql_w_products(r):
    held = f"assigned <= '{r}' AND (removed IS NULL OR removed > '{r}')"
    return f"""SELECT uid, string_agg(product, '+' ORDER BY product) AS products FROM (
        SELECT uid, product, assigned, removed, row_number() OVER (PARTITION BY uid, product ORDER BY rowid DESC) AS rn
        FROM products) p WHERE rn = 1 AND {held} GROUP BY uid"""


def sql_email_activity_detail(r, n):
    first = day_minus(r, n - 1)
    held = f"assigned <= '{r}' AND (removed IS NULL OR removed > '{r}')"
    cs = COUNTERS["exchange"]
    return f"""WITH u AS ({w_users(r)}),
    lic AS (SELECT uid FROM (SELECT uid, assigned, removed, row_number() OVER (PARTITION BY uid ORDER BY rowid DESC) AS rn
            FROM licenses WHERE service = 'exchange') x WHERE rn = 1 AND {held}),
    a AS ({w_last_activity('exchange', r)}),
    s AS (SELECT uid, {", ".join(f"sum({c}) AS {c}" for c in cs)} FROM ({w_counts('exchange', first, r)}) c GROUP BY uid),
    p AS ({sql_w_products(r)})
    SELECT '{r}' AS refresh, u.upn, u.name,
      CASE WHEN u.deleted <= '{r}' THEN 'True' ELSE 'False' END AS is_deleted,
      CASE WHEN u.deleted <= '{r}' THEN u.deleted END AS deleted_date, a.last,
      {", ".join(f"coalesce(s.{c}, 0) AS {c}" for c in cs)}, p.products, {n} AS period
    FROM u LEFT JOIN a ON a.uid = u.id LEFT JOIN lic ON lic.uid = u.id LEFT JOIN s ON s.uid = u.id LEFT JOIN p ON p.uid = u.id
    WHERE (u.deleted IS NULL OR u.deleted >= '{first}') AND (a.last >= '{first}' OR lic.uid IS NOT NULL)
    ORDER BY u.seq0"""


def sql_mailbox_detail(r, n):
    first = day_minus(r, n - 1)
    return f"""WITH m AS ({w_mailboxes(r)}),
    st AS (SELECT * FROM mailbox_days WHERE date <= '{r}' QUALIFY row_number() OVER (PARTITION BY uid ORDER BY date DESC, rowid DESC) = 1),
    a AS ({w_last_activity('exchange', r)})
    SELECT '{r}' AS refresh, m.upn, m.name,
      CASE WHEN m.del <= '{r}' THEN 'True' ELSE 'False' END AS is_deleted,
      CASE WHEN m.del <= '{r}' THEN m.del END AS deleted_date, m.created, a.last,
      coalesce(st.items, 0), coalesce(st.storage, 0), m.warn, m.send_q, m.sendrecv_q,
      coalesce(st.del_items, 0), coalesce(st.del_size, 0), m.del_q,
      CASE WHEN m.archive THEN 'True' ELSE 'False' END AS archive, {n} AS period
    FROM m LEFT JOIN st ON st.uid = m.uid LEFT JOIN a ON a.uid = m.uid
    WHERE m.created <= '{r}' AND (m.del IS NULL OR m.del >= '{first}')
    ORDER BY m.seq0"""


def sql_site_detail(kind, r, n):
    first = day_minus(r, n - 1)
    active = "active_files > 0" + (" OR views > 0" if kind == "sharePoint" else "")
    sums = "sum(active_files) AS af" + (", sum(views) AS pv, sum(visited) AS vp" if kind == "sharePoint" else "")
    if kind == "oneDrive":
        cols = "s.url, o.name, is_deleted, l.last, coalesce(now.files, 0), coalesce(w.af, 0), coalesce(now.storage, 0), coalesce(now.allocated, 0), o.upn"
    else:
        cols = ("s.id, s.url, o.name, is_deleted, l.last, coalesce(now.files, 0), coalesce(w.af, 0), coalesce(w.pv, 0), coalesce(w.vp, 0), "
                "coalesce(now.storage, 0), coalesce(now.allocated, 0), s.template, o.upn")
    return f"""WITH s AS (SELECT *, CASE WHEN deleted <= '{r}' THEN 'True' ELSE 'False' END AS is_deleted FROM ({w_sites(kind)}) x
                WHERE created <= '{r}' AND (deleted IS NULL OR deleted >= '{first}')),
    sd AS (SELECT * FROM site_days WHERE date <= '{r}' QUALIFY row_number() OVER (PARTITION BY site, date ORDER BY rowid DESC) = 1),
    now AS (SELECT * FROM sd QUALIFY row_number() OVER (PARTITION BY site ORDER BY date DESC) = 1),
    w AS (SELECT site, {sums} FROM sd WHERE date >= '{first}' GROUP BY site),
    l AS (SELECT site, max(date) AS last FROM sd WHERE {active} GROUP BY site),
    o AS ({w_users(r)})
    SELECT '{r}' AS refresh, {cols}, {n} AS period
    FROM s LEFT JOIN now ON now.site = s.id LEFT JOIN w ON w.site = s.id LEFT JOIN l ON l.site = s.id LEFT JOIN o ON o.id = s.owner
    ORDER BY s.seq0"""


# (family, label, reportroot function, peer SQL, rows from the peer's result)
def w_daily_rows(r, n, by, width, lead=()):
    """Rows of a daily report (Report Date descending) from {day: [values]} (missing: zeros)."""
    out = []
    for i in range(n):
        day = day_minus(r, i)
        out.append([r] + list(lead) + [str(x) for x in by.get(day, [0] * width)] + [day, str(n)])
    return out


def w_counts_reports(n):
    def email(r, res):
        return w_daily_rows(r, n, {d: list(v) for d, *v in res}, 5)

    def apps(r, res):
        by = {}
        for d, c, k in res:
            by.setdefault(d, [0] * len(EMAIL_APPS))[EMAIL_APPS.index(c)] = k
        return w_daily_rows(r, n, by, len(EMAIL_APPS))

    def quota(r, res):
        by = {}
        for d, s, k in res:
            by.setdefault(d, [0] * 5)[s] = k
        return w_daily_rows(r, n, by, 5)

    def storage(r, res):
        return w_daily_rows(r, n, {d: [v] for d, v in res}, 1, lead=("All",))

    return [
        ("email activity", f"EmailActivityCounts D{n}", f"getEmailActivityCounts(period='D{n}')", lambda r: sql_email_activity_counts(r, n), email),
        ("email app usage", f"EmailAppUsageUserCounts D{n}", f"getEmailAppUsageUserCounts(period='D{n}')", lambda r: sql_email_app_user_counts(r, n), apps),
        ("mailbox usage", f"MailboxUsageQuotaStatusMailboxCounts D{n}", f"getMailboxUsageQuotaStatusMailboxCounts(period='D{n}')", lambda r: sql_quota_status_counts(r, n), quota),
        ("OneDrive usage", f"OneDriveUsageStorage D{n}", f"getOneDriveUsageStorage(period='D{n}')", lambda r: sql_site_storage("oneDrive", r, n), storage),
        ("SharePoint usage", f"SharePointSiteUsageStorage D{n}", f"getSharePointSiteUsageStorage(period='D{n}')", lambda r: sql_site_storage("sharePoint", r, n), storage),
    ]


def w_detail_reports(n):
    return [
        ("email activity", f"EmailActivityUserDetail D{n}", f"getEmailActivityUserDetail(period='D{n}')", lambda r: sql_email_activity_detail(r, n)),
        ("mailbox usage", f"MailboxUsageDetail D{n}", f"getMailboxUsageDetail(period='D{n}')", lambda r: sql_mailbox_detail(r, n)),
        ("OneDrive usage", f"OneDriveUsageAccountDetail D{n}", f"getOneDriveUsageAccountDetail(period='D{n}')", lambda r: sql_site_detail("oneDrive", r, n)),
        ("SharePoint usage", f"SharePointSiteUsageDetail D{n}", f"getSharePointSiteUsageDetail(period='D{n}')", lambda r: sql_site_detail("sharePoint", r, n)),
    ]


W_PERIOD = 180


def peer_workload_detail_main(db, r, out_dir, once="0"):
    """Child process (`run.py --peer-workload-detail DB R DIR`, under /usr/bin/time for its
    peak RSS): each detail query as `COPY (…) TO` CSV twice (first, repeat); timings as JSON."""
    times = {}
    con = duckdb.connect(db, read_only=True)
    duck_usage_settings(con)
    for fam, label, fn, sql in w_detail_reports(W_PERIOD):
        out = os.path.join(out_dir, f"duckdb_{fn.split('(')[0]}.csv")
        for attempt in ("first",) if once == "1" else ("first", "repeat"):
            t0 = time.perf_counter()
            con.execute(f"COPY ({sql(r)}) TO '{out}' (HEADER, DELIMITER ',')")
            times[f"{label} {attempt}"] = time.perf_counter() - t0
    con.close()
    print(json.dumps(times))


def bench_workloads(n, work, smoke, usage_days=None, http=True, peer_once=False):
    """The workload families at n users: generate with --usage, ingest (CLI, durable; and HTTP
    into the server that answers), the first call after ingest and the repeat call of one daily
    and one detail report per family, the same questions on DuckDB, identical values checked."""
    tid = "be0c0000-0000-4000-8000-%012d" % (n + 1)
    res = {"users": n, "usage_days": usage_days or 180}
    nd = os.path.join(work, f"w{n}.ndjson")
    cmd = [BIN, "generate", "--tenant", tid, "--users", str(n), "--days", "180", "--seed", "42", "--end", END, "--usage", "--out", nd]
    if usage_days:
        cmd[-2:-2] = ["--usage-days", str(usage_days)]
    t0 = time.perf_counter()
    g = run(cmd)
    res["generate_s"] = time.perf_counter() - t0
    m = re.search(r"(\d+) records, (\d+) activity signals", g.stderr)
    res["records"], res["signals"] = int(m.group(1)), int(m.group(2))
    res["ndjson_bytes"] = os.path.getsize(nd)
    print(f"[w{n}] generated {res['records']:,} records ({res['ndjson_bytes'] / 1e6:,.0f} MB, usage facts for the last {res['usage_days']} days) in {res['generate_s']:.0f} s", flush=True)

    # CLI ingest, durable, with its peak RSS.
    d_cli = os.path.join(work, f"wcli{n}")
    rss_file = os.path.join(work, "maxrss")
    t0 = time.perf_counter()
    run(["/usr/bin/time", "-f", "%M", "-o", rss_file, BIN, "ingest", "--data", d_cli, "--tenant", tid, nd])
    res["cli_ingest_s"] = time.perf_counter() - t0
    res["cli_ingest_peak_rss"] = int(open(rss_file).read().split()[-1]) * 1024
    if http:
        shutil.rmtree(d_cli, ignore_errors=True)
    print(f"[w{n}] CLI ingest {res['cli_ingest_s']:.1f} s", flush=True)

    # DuckDB load of the same file, then its queries (the server is not running meanwhile).
    db = os.path.join(work, f"wduck{n}.db")
    con = duckdb.connect(db)
    duck_usage_settings(con)
    t0 = time.perf_counter()
    r = duck_load_usage(con, nd)
    con.execute("CHECKPOINT")
    res["duck_load_s"] = time.perf_counter() - t0
    print(f"[w{n}] DuckDB load {res['duck_load_s']:.1f} s", flush=True)
    peer = {}
    for fam, label, fn, sql, shape in w_counts_reports(W_PERIOD):
        # peer_once: the first run only (to fit the 1M-user run in the time available).
        for attempt in ("first",) if peer_once else ("first", "repeat"):
            t0 = time.perf_counter()
            out = con.execute(sql(r)).fetchall()
            res[f"duck {label} {attempt}_s"] = time.perf_counter() - t0
        peer[label] = shape(r, out)
    con.close()
    det = os.path.join(work, f"wdetail{n}")
    os.makedirs(det, exist_ok=True)
    out = run(["/usr/bin/time", "-f", "%M", "-o", rss_file, sys.executable, os.path.abspath(__file__),
               "--peer-workload-detail", db, r, det, "1" if peer_once else "0"]).stdout
    for k, v in json.loads(out.strip().splitlines()[-1]).items():
        res[f"duck {k}_s"] = v
    res["duck_detail_peak_rss"] = int(open(rss_file).read().split()[-1]) * 1024
    os.remove(db)
    print(f"[w{n}] DuckDB queries done", flush=True)

    # HTTP ingest into the server that answers; without it (http=False, to save the time of a
    # second ingest at 1M users) the server is started on the CLI's data dir, and its first
    # calls are the first after a start.
    res["http"] = http
    d = os.path.join(work, f"whttp{n}") if http else d_cli
    srv = Server(d)
    reader = run([BIN, "token", "--data", d, "--tenant", tid, "--app", "--ttl", "6h"]).stdout.strip()
    if http:
        writer = run([BIN, "token", "--data", d, "--tenant", tid, "--app", "--roles", "ReportData.ReadWrite.All", "--ttl", "6h"]).stdout.strip()
        t0 = time.perf_counter()
        for body in split_batches(nd, 200 << 20):
            st, _, o = req(srv.host, "POST", f"/admin/v1/tenants/{tid}/ingest", {"Authorization": "Bearer " + writer, "Content-Type": "application/x-ndjson"}, body)
            assert st == 200, o
        res["http_ingest_s"] = time.perf_counter() - t0
        res["serve_ingest_peak_rss"] = srv.rss()["VmHWM"]
    os.remove(nd)
    settings = run([BIN, "token", "--data", d, "--tenant", tid, "--app", "--roles", "ReportSettings.ReadWrite.All", "--ttl", "6h"]).stdout.strip()
    st, _, o = req(srv.host, "PATCH", "/v1.0/admin/reportSettings", {"Authorization": "Bearer " + settings, "Content-Type": "application/json"}, b'{"displayConcealedNames": false}')
    assert st == 204, (st, o)

    def counts_pass(srv, attempt, reps):
        rows = {}
        for fam, label, fn, sql, shape in w_counts_reports(W_PERIOD):
            path = "/v1.0/reports/" + fn
            t, rows[label] = rr_report(srv, reader, path)
            res[f"rr {label} {attempt}_s"] = t
            if reps:
                res[f"rr {label} repeat_s"] = sorted(rr_report(srv, reader, path)[0] for _ in range(reps))[reps // 2]
        return rows

    def detail_pass(srv, attempt, reps):
        spool = os.path.join(d, "spool")
        for fam, label, fn, sql in w_detail_reports(W_PERIOD):
            path = "/v1.0/reports/" + fn
            out_path = os.path.join(det, f"rr_{fn.split('(')[0]}.csv")
            reset_hwm(srv.p.pid)
            before = srv.rss()
            sp0 = du(spool) if os.path.isdir(spool) else 0
            mm = rr_detail(srv, reader, path, out_path)
            after = srv.rss()
            res.update({f"rr {label} {attempt} {k}": v for k, v in mm.items()})
            res[f"rr {label} {attempt} rise"] = after["VmHWM"] - before["VmRSS"]
            res[f"rr {label} {attempt} rss_before"] = before["VmRSS"]
            res[f"rr {label} {attempt} spool"] = du(spool) - sp0
            if reps:
                rr_reps = [rr_detail(srv, reader, path, out_path) for _ in range(reps)]
                for k in ("call_s", "download_s"):
                    res[f"rr {label} repeat {k}"] = sorted(x[k] for x in rr_reps)[reps // 2]

    rr = counts_pass(srv, "first", 5 if smoke else 9)
    detail_pass(srv, "first", 3)
    if http:
        srv.stop()
        # Restart: the first call of each report with nothing cached, then the resident set.
        srv = Server(d)
        counts_pass(srv, "cold", 0)
        detail_pass(srv, "cold", 0)
    else:
        for k in [k for k in res if k.startswith("rr ") and " first" in k]:
            res[k.replace(" first", " cold")] = res[k]
    mem = srv.rss()
    res["rss_bytes"], res["hwm_bytes"] = mem["VmRSS"], mem["VmHWM"]
    srv.stop()
    res["datadir_bytes"] = du(d)
    shutil.rmtree(d, ignore_errors=True)

    for fam, label, fn, sql, shape in w_counts_reports(W_PERIOD):
        if peer[label] != rr[label]:
            print(f"MISMATCH duckdb {label}\n reportroot: {rr[label][:5]}\n duckdb: {peer[label][:5]}", flush=True)
            raise SystemExit(1)
    for fam, label, fn, sql in w_detail_reports(W_PERIOD):
        name = fn.split("(")[0]
        rows, diff = compare_csv(os.path.join(det, f"rr_{name}.csv"), os.path.join(det, f"duckdb_{name}.csv"), header=False)
        if diff:
            print(f"MISMATCH duckdb {label}: {diff}", flush=True)
            raise SystemExit(1)
        res[f"{label} rows"] = rows
    shutil.rmtree(det, ignore_errors=True)
    res["identical"] = True
    print(f"[w{n}] identical values: reportroot, duckdb (5 daily reports, 4 detail reports)", flush=True)
    return res


def w_table(results):
    lines = []
    add = lines.append
    add("| family | metric | users (usage days) | reportroot | DuckDB | ratio |")
    add("|---|---|---|---|---|---|")
    mib = lambda b: f"{b / 2**20:,.0f} MiB"
    for r in results:
        n = r["users"]
        who = f"{n:,} ({r['usage_days']})"
        add(f"| all | ingest of the NDJSON ({r['records'] / 1e6:,.2f}M records, {r['ndjson_bytes'] / 1e9:,.2f} GB): CLI (durable) vs DuckDB load + CHECKPOINT | {who} | "
            f"{fmt_ms(r['cli_ingest_s'])} ({r['records'] / r['cli_ingest_s'] / 1e3:,.0f}k records/s) | {fmt_ms(r['duck_load_s'])} | {r['duck_load_s'] / r['cli_ingest_s']:.2f}× |")
        if r.get("http", True):
            add(f"| all | ingest over HTTP (200 MB batches) | {who} | {fmt_ms(r['http_ingest_s'])} | | |")
        for fam, label, fn, sql, shape in w_counts_reports(W_PERIOD):
            attempts = (("first", "first call after ingest"), ("cold", "first call after restart"), ("repeat", "repeat call"))
            if not r.get("http", True):
                attempts = (("first", "first call after a start on the ingested data"), ("repeat", "repeat call"))
            for attempt, what in attempts:
                ours = r[f"rr {label} {attempt}_s"]
                dk = r.get(f"duck {label} {'repeat' if attempt == 'repeat' else 'first'}_s")
                add(f"| {fam} | {label}, {what} | {who} | {fmt_ms(ours)} | " + (f"{fmt_ms(dk)} | {dk / ours:,.0f}× |" if dk else "not run | |"))
        for fam, label, fn, sql in w_detail_reports(W_PERIOD):
            rows = r[f"{label} rows"]
            f = lambda k: r[f"rr {label} {k}"]
            add(f"| {fam} | {label}, report call (302 once spooled) first after ingest / after restart / repeat | {who} | "
                f"{fmt_ms(f('first call_s'))} / {fmt_ms(f('cold call_s'))} / {fmt_ms(f('repeat call_s'))} | | |")
            add(f"| {fam} | {label}, download ({rows:,} rows; spool {f('first spool') / 1e6:,.1f} MB): first byte / whole | {who} | "
                f"{fmt_ms(f('first ttfb_s'))} / {fmt_ms(f('first download_s'))} | | |")
            for attempt in ("first", "repeat"):
                ours = f(f"{attempt} call_s") + f(f"{attempt} download_s")
                dk = r.get(f"duck {label} {attempt}_s")
                add(f"| {fam} | {label}, call + download vs `COPY (…) TO` CSV, {attempt} | {who} | {fmt_ms(ours)} | "
                    + (f"{fmt_ms(dk)} | {dk / ours:,.1f}× |" if dk else "not run | |"))
            add(f"| {fam} | {label}, server peak RSS rise during call + download (after ingest / after restart) | {who} | "
                f"+{mib(max(0, f('first rise')))} / +{mib(max(0, f('cold rise')))} ({max(0, f('first rise'), f('cold rise')) / n:,.0f} bytes/user) | | |")
        add(f"| all | DuckDB detail queries, peak RSS of the process | {who} | | {mib(r['duck_detail_peak_rss'])} | |")
        add(f"| all | server RSS after restart and every report above, bytes/user | {who} | {r['rss_bytes'] / n:,.0f} (peak {r['hwm_bytes'] / n:,.0f}) | | |")
        add(f"| all | peak RSS, bytes/user: `ingest` CLI / server during HTTP ingest | {who} | {r['cli_ingest_peak_rss'] / n:,.0f} / "
            + (f"{r['serve_ingest_peak_rss'] / n:,.0f} | | |" if r.get("http", True) else "– | | |"))
        add(f"| all | data dir on disk, bytes/user | {who} | {r['datadir_bytes'] / n:,.0f} | | |")
        add(f"| all | identical values (5 daily reports row for row; 4 detail CSVs row for row) | {who} | {'yes' if r['identical'] else 'NO'} | | |")
    return "\n".join(lines)


def write_block(path, begin, end, body):
    block = (f"{begin}\n<!-- generated by bench/run.py on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
             f"do not edit by hand -->\nMachine: {machine()}.\n\n{body}\n{end}")
    old = open(path).read() if os.path.exists(path) else ""
    if begin in old and end in old:
        text = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        text = old + ("\n" if old else "") + block + "\n"
    with open(path, "w") as f:
        f.write(text)


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
    if len(sys.argv) > 1 and sys.argv[1] == "--peer-detail":
        engine, db, r, out_dir, periods = sys.argv[2:7]
        peer_detail_main(engine, db, r, out_dir, [int(p) for p in periods.split(",")])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--peer-workload-detail":
        peer_workload_detail_main(*sys.argv[2:6])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--render-workloads":
        # run.py --render-workloads OUT.md A.json [B.json ...]: one table from several runs'
        # raw results (e.g. 10k/100k and 1M run separately), written between the markers.
        out, files = sys.argv[2], sys.argv[3:]
        results = sorted((r for f in files for r in json.load(open(f))), key=lambda r: r["users"])
        write_block(out, W_BEGIN, W_END, w_table(results))
        with open(os.path.splitext(out)[0] + "-workloads.json", "w") as f:
            f.write(json.dumps(results, indent=1))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="10k users only, short load runs (CI)")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--out", default=None, help="write the table to this Markdown file")
    ap.add_argument("--work", default=None, help="scratch dir (default: a temp dir)")
    ap.add_argument("--workloads", action="store_true",
                    help="only the workload families (email, email apps, mailbox, OneDrive, SharePoint) on a --usage tenant")
    ap.add_argument("--no-http", default="", help="SIZE,...: workloads without the HTTP ingest at these sizes (server started on the CLI's data dir)")
    ap.add_argument("--peer-once", default="", help="SIZE,...: DuckDB runs each workload query once (no repeat) at these sizes")
    ap.add_argument("--usage-days", default="",
                    help="SIZE:DAYS,...: usage facts for the last DAYS days only at that size (generate --usage-days)")
    ap.add_argument("--pg-url", default=os.environ.get("REPORTROOT_TEST_DATABASE_URL"),
                    help="PostgreSQL admin URL (a role that may create databases) for the PostgreSQL column; "
                         "default: REPORTROOT_TEST_DATABASE_URL (bench/run sets it with scripts/ensure-postgres)")
    ap.add_argument("--no-pg", action="store_true", help="no PostgreSQL column")
    a = ap.parse_args()
    pg_url = None if a.no_pg or a.workloads else a.pg_url
    if pg_url and not shutil.which("psql"):
        raise SystemExit("bench: psql (Debian's postgresql-client) is needed for the PostgreSQL column; install it or pass --no-pg")
    if not pg_url and not a.no_pg and not a.workloads:
        print("bench: no PostgreSQL URL (--pg-url or REPORTROOT_TEST_DATABASE_URL): the PostgreSQL column is skipped", flush=True)
    sizes = [10000] if a.smoke else [int(x) for x in a.sizes.split(",")]
    usage_days = {int(k): int(v) for k, v in (x.split(":") for x in a.usage_days.split(",") if x)}
    work = a.work or tempfile.mkdtemp(prefix="rr-bench-")
    os.makedirs(work, exist_ok=True)
    results, wresults = [], []
    try:
        for n in sizes:
            if not a.workloads:
                results.append(bench_size(n, work, a.smoke, pg_url))
            # The smoke run (CI) covers the workload families at 10k too, kept short: no HTTP
            # ingest (the server starts on the CLI's data dir) and DuckDB's queries run once.
            if a.workloads or a.smoke:
                http = str(n) not in a.no_http.split(",") and not (a.smoke and not a.workloads)
                once = str(n) in a.peer_once.split(",") or (a.smoke and not a.workloads)
                wresults.append(bench_workloads(n, work, a.smoke, usage_days.get(n), http, once))
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    if wresults:
        wt = w_table(wresults)
        print(wt)
        if a.out and a.workloads:
            write_block(a.out, W_BEGIN, W_END, wt)
            with open(os.path.splitext(a.out)[0] + "-workloads.json", "w") as f:
                f.write(json.dumps(wresults, indent=1))
    if a.workloads:
        print("bench: 1 passed, 0 failed")
        return
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
