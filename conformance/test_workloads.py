"""The 27 Exchange, OneDrive and SharePoint report functions (workload activity, mailbox usage,
OneDrive and SharePoint usage, email app usage) through the official Python msgraph-sdk
(v1.0) request builders, the beta SDK and raw HTTPS, against the independent oracle of
conformance/workloads.py: CSV byte for byte for every period and the date= forms, beta JSON
(value for value, the catalogue's property names, paged with $top), the URL forms and CSV
parsing of the public tools, and concealed names."""
import asyncio
import csv
import datetime
import io
import re
import urllib.parse

import httpx
import pytest

import oracle
import workloads as wl
from conftest import pending
from features import auth, http, set_concealed
from test_clients import PERIODS, sdk_client, token

V1 = "python msgraph-sdk v1.0"
BETA = "python msgraph-beta-sdk"
RAW = "raw https (httpx)"
DIGEST = re.compile(r"^[0-9A-F]{32}$")


# ------------------------------------------------------------------ helpers

def served(env):
    """xfail (listed as pending) while the workload functions are not served."""
    cache = env.__dict__.setdefault("features", {})
    if "workloads" not in cache:
        with http(env) as c:
            r = c.get(env.base + "/v1.0/reports/getEmailActivityCounts(period='D7')", headers=auth(env))
        cache["workloads"] = None if r.status_code in (200, 302) else \
            f"the Exchange/OneDrive/SharePoint report functions not served yet ({r.status_code} {r.text[:120]})"
    if cache["workloads"]:
        pending(cache["workloads"])
        pytest.xfail(cache["workloads"])


def dates(env):
    r = env.oracle.r
    return [r, oracle.shift(r, -6), oracle.shift(r, -7), oracle.shift(r, -27)]


def bad_dates(env):
    r = env.oracle.r
    return [oracle.shift(r, -28), oracle.shift(r, 1)]


def label(f, period=None, date=None, env=None):
    if date is not None:
        rel = (oracle.day(date) - oracle.day(env.oracle.r)).days
        return f"{f}(date=R{rel:+d})" if rel else f"{f}(date=R)"
    return f"{f}(period='{period}')"


def path_of(f, period=None, date=None, version="v1.0"):
    if date is not None:
        return f"/{version}/reports/{f}(date={date})"
    return f"/{version}/reports/{f}(period='{period}')"


def calls(env):
    """(function, period, date) of every call checked: each function for every period, and the
    date= forms for the functions that take one."""
    out = [(f, p, None) for f in wl.FUNCTIONS for p in PERIODS]
    out += [(f, None, d) for f in wl.WITH_DATE for d in dates(env)]
    return out


def snake(f):
    """The SDK's builder name of a function: getOneDriveUsageStorage -> get_one_drive_usage_storage."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", f).lower().replace("office365", "office365")


def builder(client, f, period=None, date=None):
    """The v1.0/beta SDK request builder (made just before its call: kiota's builders share the
    parent's path-parameter dict)."""
    if date is not None:
        return getattr(client.reports, snake(f) + "_with_date")(oracle.day(date))
    return getattr(client.reports, snake(f) + "_with_period")(period)


def csv_rows(body):
    assert body.startswith(oracle.BOM), body[:40]
    text = body[3:].decode()
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), "CRLF line ends"
    return list(csv.reader(io.StringIO(text, newline="")))


def check_concealed(f, got_rows, want, digests):
    """Rows with the name columns concealed: each a 32-hex digest, the same in both name
    columns of a row and for a user (or site owner) in every report; the rest exact."""
    assert got_rows[0] == wl.header(f).split(","), got_rows[0]
    got = got_rows[1:]
    assert len(got) == len(want), (f, len(got), len(want))
    pos = wl.name_positions(f)
    for i, (g, (uid, w)) in enumerate(zip(got, want)):
        names = {g[p] for p in pos}
        if uid is None:  # a site without owner: nothing to conceal
            assert names == {""}, (f, i, g)
        else:
            assert len(names) == 1, (f, i, [g[p] for p in pos])
            d = names.pop()
            assert DIGEST.match(d), (f, i, d)
            assert digests.setdefault(uid, d) == d, (f, uid, "digest differs between reports")
        mask = lambda row: [x for j, x in enumerate(row) if j not in pos]
        assert mask(g) == mask([str(x) for x in w]), (f, i, g, w)


# ------------------------------------------------------------------ the data covers the boundaries

def test_workload_data_exercises_the_boundaries(env):
    """The generated tenant (`generate --usage`) plus conformance/edge.py give every report
    non-trivial rows: counters in every workload, each quota status, deleted mailboxes and
    sites within D7, every email client and Outlook version, sites without owner."""
    t = env.oracle
    assert wl.header("getEmailActivityCounts") == wl.CATALOGUE["getEmailActivityCounts"][0]
    for f in wl.FUNCTIONS:
        assert wl.header(f) == wl.CATALOGUE[f][0], f
        names = {c[1] for c in wl.COLUMNS[f]}
        cat = set(wl.CATALOGUE[f][1].split(","))
        assert names == cat or (f == "getSharePointSiteUsageDetail" and names < cat), (f, names ^ cat)
    for f in wl.FUNCTIONS:
        rows = wl.rows(t, f, "D7")
        assert rows, f
        if f != "getEmailAppUsageVersionsUserCounts":
            assert any(any(x not in ("0", "") for x in r[1:-2]) for r in rows), f
    q = wl.rows(t, "getMailboxUsageQuotaStatusMailboxCounts", "D7")[0]
    assert all(int(x) > 0 for x in q[1:6]), q
    mbx = wl.rows(t, "getMailboxUsageDetail", "D7")
    assert any(r[3] == "True" for r in mbx) and any(r[6] == "" for r in mbx)
    for f in ["getOneDriveUsageAccountDetail", "getSharePointSiteUsageDetail"]:
        rows = wl.rows(t, f, "D7")
        assert any(r[wl.header(f).split(",").index("Is Deleted")] == "True" for r in rows), f
    assert any(u is None for u, _r in wl.keyed_rows(t, "getSharePointSiteUsageDetail", "D7"))
    apps = wl.rows(t, "getEmailAppUsageAppsUserCounts", "D30")[0]
    vers = wl.rows(t, "getEmailAppUsageVersionsUserCounts", "D30")[0]
    assert all(int(x) > 0 for x in apps[1:10]) and all(int(x) > 0 for x in vers[1:]), (apps, vers)
    for f in wl.WITH_DATE:
        assert all(wl.rows(t, f, date=d) for d in dates(env)), f


# ------------------------------------------------------------------ Python msgraph-sdk v1.0 (CSV, byte for byte)

def test_python_sdk_v1_workloads(env, record):
    served(env)
    set_concealed(env, False)

    async def go():
        client = sdk_client(env)
        for f, period, date in calls(env):
            body = await builder(client, f, period, date).get()
            want = wl.expected_csv(env.oracle, f, period, date)
            if body != want:
                got, exp = csv_rows(body), csv_rows(want)
                diff = [(i, g, w) for i, (g, w) in enumerate(zip(got, exp)) if g != w][:3]
                raise AssertionError((label(f, period, date, env), len(got), len(exp), diff))
            record(label(f, period, date, env), V1)
    asyncio.run(go())


def test_python_sdk_v1_workloads_concealed(env, record):
    """displayConcealedNames on: the detail reports' user and owner names are digests, the same
    as getOffice365ActiveUserDetail's for that user, in CSV and in JSON."""
    served(env)
    set_concealed(env, True)
    try:
        async def go():
            client = sdk_client(env)
            digests = {}
            aud = await client.reports.get_office365_active_user_detail_with_period("D180").get()
            rows = csv_rows(aud)[1:]
            for (uid, _w), g in zip(oracle.active_user_detail(env.oracle, "D180"), rows):
                assert DIGEST.match(g[1]) and g[1] == g[2], g[:3]
                digests[uid] = g[1]
            seen = 0
            for f, period, date in calls(env):
                if f not in wl.DETAIL:
                    continue
                body = await builder(client, f, period, date).get()
                check_concealed(f, csv_rows(body), wl.keyed_rows(env.oracle, f, period, date), digests)
                seen += 1
                record(label(f, period, date, env) + " (concealed names)", V1)
            assert len(set(digests.values())) == len(digests), "two users share a digest"
            return digests
        digests = asyncio.run(go())
        h = auth(env)
        with http(env) as c:
            for f in wl.DETAIL:
                body = c.get(env.base + path_of(f, "D30", None, "beta") + "?$format=application/json&$top=1000",
                             headers=h).json()
                want = wl.keyed_rows(env.oracle, f, "D30")
                assert len(body["value"]) == len(want), (f, len(body["value"]), len(want))
                keys = [c[1] for c in wl.COLUMNS[f] if c[0] in wl.NAME_COLUMNS]
                for g, (uid, w) in zip(body["value"], want):
                    expect = wl.to_json(f, [str(x) for x in w])
                    for k in keys:
                        assert g[k] == (digests[uid] if uid else ""), (f, k, g[k])
                        g[k] = expect[k] = None
                    assert {k: g.get(k) for k in expect} == expect, (f, g, expect)
                record(f"{f}(period='D30') beta JSON (concealed names)", RAW)
    finally:
        set_concealed(env, False)


def test_python_sdk_v1_workload_bad_dates(env, record):
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    served(env)

    async def go():
        client = sdk_client(env)
        for f in wl.WITH_DATE:
            for d in bad_dates(env):
                with pytest.raises(wl.DateError) as want:
                    wl.rows(env.oracle, f, date=d)
                with pytest.raises(ODataError) as e:
                    await builder(client, f, None, d).get()
                assert e.value.response_status_code == 400 and e.value.error.code == "InvalidArgument", (f, d)
                assert e.value.error.message == str(want.value), (f, e.value.error.message)
            record(f"{f}(date=R-28 / R+1) → 400 InvalidArgument", V1)
    asyncio.run(go())


# ------------------------------------------------------------------ beta: the SDK, and JSON = CSV

def test_python_beta_sdk_workloads(env, record):
    """The beta SDK's builders of the 27 functions (typed as bytes: they accept
    application/octet-stream, so the server answers the 302 and CSV): D7 CSV byte for byte,
    every date= form, and each function's JSON through the builder's with_url
    (`$format=application/json`, `$top=999` on the detail reports)."""
    import json
    served(env)
    set_concealed(env, False)

    async def go():
        client = sdk_client(env, beta=True)
        for f in wl.FUNCTIONS:
            assert await builder(client, f, "D7").get() == wl.expected_csv(env.oracle, f, "D7"), f
            record(label(f, "D7"), BETA)
            q = "$format=application/json" + ("&$top=999" if f in wl.DETAIL else "")
            raw = await builder(client, f, "D30").with_url(env.base + path_of(f, "D30", None, "beta") + "?" + q).get()
            body = json.loads(raw)
            names = [col[1] for col in wl.COLUMNS[f]]
            assert [{k: g[k] for k in names} for g in body["value"]] == wl.expected_json(env.oracle, f, "D30"), f
            assert "@odata.nextLink" not in body, f
            record(label(f, "D30") + " beta $format=application/json" + ("&$top=999" if f in wl.DETAIL else ""), BETA)
        for f in wl.WITH_DATE:
            d = oracle.shift(env.oracle.r, -7)
            assert await builder(client, f, None, d).get() == wl.expected_csv(env.oracle, f, None, d), f
            record(label(f, None, d, env), BETA)
    asyncio.run(go())


def walk(c, env, url, top, h):
    """Every entry of a paged JSON report, following @odata.nextLink; (entries, pages)."""
    got, pages = [], 0
    resp = c.get(url, headers=h)
    while True:
        assert resp.status_code == 200, (url, resp.status_code, resp.text[:300])
        body = resp.json()
        pages += 1
        assert body["@odata.context"].startswith(env.base + "/beta/$metadata#"), body["@odata.context"]
        assert len(body["value"]) <= top
        got += body["value"]
        nxt = body.get("@odata.nextLink")
        if not nxt:
            return got, pages
        assert len(body["value"]) == top and nxt.startswith(env.base + "/beta/reports/"), nxt
        resp = c.get(nxt, headers=h)


def test_raw_beta_json_equals_csv(env, record):
    """Every call of the CSV test as beta `$format=application/json` (detail reports with
    `$top=999`, as the public tools ask, every page followed): each entry is the CSV row under
    the catalogue's JSON property names, typed (numbers, booleans, null dates, the Report
    Period a string, Assigned Products an array)."""
    served(env)
    set_concealed(env, False)
    h = auth(env)
    with http(env) as c:
        for f, period, date in calls(env):
            want = wl.expected_json(env.oracle, f, period, date)
            q = "$format=application/json" + ("&$top=999" if f in wl.DETAIL else "")
            got, _pages = walk(c, env, env.base + path_of(f, period, date, "beta") + "?" + q, 999, h)
            names = [col[1] for col in wl.COLUMNS[f]]
            assert all(set(g) >= set(names) for g in got), (f, set(names) - set(got[0]) if got else None)
            got = [{k: g[k] for k in names} for g in got]
            if got != want:
                diff = [(i, {k: (g[k], w[k]) for k in names if g[k] != w[k]}) for i, (g, w) in enumerate(zip(got, want)) if g != w][:3]
                raise AssertionError((label(f, period, date, env), len(got), len(want), diff))
            record(label(f, period, date, env) + " beta $format=application/json" + ("&$top=999" if f in wl.DETAIL else ""), RAW)


def test_raw_beta_json_paging_walk(env, record):
    """The detail reports in pages of 97 through @odata.nextLink: every entity exactly once, in
    order, none lost."""
    served(env)
    set_concealed(env, False)
    h = auth(env)
    with http(env) as c:
        for f in wl.DETAIL:
            for period, date in [("D180", None)] + ([(None, oracle.shift(env.oracle.r, -6))] if f in wl.WITH_DATE else []):
                want = wl.expected_json(env.oracle, f, period, date)
                got, pages = walk(c, env, env.base + path_of(f, period, date, "beta") + "?$format=application/json&$top=97", 97, h)
                names = [col[1] for col in wl.COLUMNS[f]]
                got = [{k: g[k] for k in names} for g in got]
                assert pages == max(1, -(-len(want) // 97)), (f, pages, len(want))
                assert got == want, label(f, period, date, env)
                key = [k for k in ("siteId", "siteUrl", "userPrincipalName") if k in names][0]
                assert len({g[key] for g in got}) == len(got), (f, "an entity twice")
                record(label(f, period, date, env) + " beta JSON, $top=97 walk via @odata.nextLink", RAW)


# ------------------------------------------------------------------ the public tools' URL forms and CSV parsing

def tool_forms(env):
    """(row, path, (function, period, date)): the forms the public tools send (Elastic
    o365_metrics: `(date=YYYY-MM-DD)` on the detail reports; Datadog, Centreon, CIPP and the
    CLI for Microsoft 365: `(period='D7')`; PowerShell modules: beta; lower-case periods and
    the `microsoft.graph.` prefix of OData clients)."""
    r = env.oracle.r
    d6 = oracle.shift(r, -6)
    out = []
    for f in wl.FUNCTIONS:
        out.append((f"{f}(period='D7')", f"/v1.0/reports/{f}(period='D7')", (f, "D7", None)))
    out += [
        ("getMailboxUsageDetail(period='d7') (lower case)", "/v1.0/reports/getMailboxUsageDetail(period='d7')", ("getMailboxUsageDetail", "D7", None)),
        ("getEmailActivityCounts(period='d30') (lower case)", "/v1.0/reports/getEmailActivityCounts(period='d30')", ("getEmailActivityCounts", "D30", None)),
        ("getOneDriveUsageStorage(period=D90) (unquoted)", "/v1.0/reports/getOneDriveUsageStorage(period=D90)", ("getOneDriveUsageStorage", "D90", None)),
        ("getSharePointSiteUsageSiteCounts(period=%27D180%27)", "/v1.0/reports/getSharePointSiteUsageSiteCounts(period=%27D180%27)", ("getSharePointSiteUsageSiteCounts", "D180", None)),
        ("microsoft.graph.getMailboxUsageStorage(period='D7')", "/v1.0/reports/microsoft.graph.getMailboxUsageStorage(period='D7')", ("getMailboxUsageStorage", "D7", None)),
        ("microsoft.graph.getSharePointSiteUsageDetail(period='D30')", "/v1.0/reports/microsoft.graph.getSharePointSiteUsageDetail(period='D30')", ("getSharePointSiteUsageDetail", "D30", None)),
        ("beta getSharePointSiteUsageDetail(period='D7') as CSV", "/beta/reports/getSharePointSiteUsageDetail(period='D7')?$format=text/csv", ("getSharePointSiteUsageDetail", "D7", None)),
        ("getEmailAppUsageUserDetail(period='D7')/ (trailing slash)", "/v1.0/reports/getEmailAppUsageUserDetail(period='D7')/", ("getEmailAppUsageUserDetail", "D7", None)),
    ]
    for f in wl.WITH_DATE:
        out.append((f"{f}(date=R-6)", f"/v1.0/reports/{f}(date={d6})", (f, None, d6)))
    out += [
        ("getOneDriveUsageAccountDetail(date='R') (quoted date)", f"/v1.0/reports/getOneDriveUsageAccountDetail(date='{r}')", ("getOneDriveUsageAccountDetail", None, r)),
        ("getEmailActivityUserDetail(date='R-27') (quoted date)", f"/v1.0/reports/getEmailActivityUserDetail(date='{oracle.shift(r, -27)}')", ("getEmailActivityUserDetail", None, oracle.shift(r, -27))),
        ("microsoft.graph.getSharePointActivityUserDetail(date=R)", f"/v1.0/reports/microsoft.graph.getSharePointActivityUserDetail(date={r})", ("getSharePointActivityUserDetail", None, r)),
    ]
    return out


def test_raw_tool_url_forms_and_csv_parsing(env, record):
    """Each form followed to the CSV and compared byte for byte; then parsed as the tools do:
    Python's csv with utf-8-sig (the BOM stripped from the first column name, as Datadog's and
    Centreon's parsers do), and a naive parse that keeps the BOM (Go's encoding/csv under
    Elastic's CEL `mime("text/csv; header=present")`): its first column is
    '\\ufeffReport Refresh Date'."""
    served(env)
    set_concealed(env, False)
    with httpx.Client(verify=env.ca, follow_redirects=True, timeout=60) as c:
        h = auth(env)
        for row, path, (f, period, date) in tool_forms(env):
            resp = c.get(env.base + path, headers=h)
            want = wl.expected_csv(env.oracle, f, period, date)
            assert resp.status_code == 200 and resp.content == want, (row, resp.status_code, resp.content[:300])
            parsed = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"), newline="")))
            assert list(parsed[0]) if parsed else True
            expect = [dict(zip(wl.header(f).split(","), [str(x) for x in r])) for r in wl.rows(env.oracle, f, period, date)]
            assert parsed == expect, row
            naive = resp.content.decode("utf-8").split("\r\n")
            first = naive[0].split(",")[0]
            assert first == "\ufeffReport Refresh Date", repr(first)
            record(row, RAW)
        record("workload CSV parsed with utf-8-sig (BOM stripped) and naively (first header '\\ufeffReport Refresh Date')", RAW)


def test_raw_workload_errors(env, record):
    """Bad date= (outside R−27 … R) → 400 InvalidArgument with Graph's message on the six
    functions that take a date; getMailboxUsageDetail has no date= → 400; a bad period → 400."""
    served(env)
    h = auth(env)
    with http(env) as c:
        for f in wl.WITH_DATE:
            for d in bad_dates(env):
                want = f"Invalid date value specified: {d}. Only support data for the past 28 days."
                for version in ["v1.0", "beta"]:
                    resp = c.get(env.base + f"/{version}/reports/{f}(date={d})", headers=h)
                    err = resp.json()["error"]
                    assert resp.status_code == 400 and err["code"] == "InvalidArgument" and err["message"] == want, (f, version, d, resp.text)
        record("the six date= workload functions: date=R-28 / R+1 → 400 InvalidArgument", RAW)
        resp = c.get(env.base + f"/v1.0/reports/getMailboxUsageDetail(date={env.oracle.r})", headers=h)
        assert resp.status_code == 400 and resp.json()["error"]["code"] in ("BadRequest", "InvalidArgument"), resp.text
        record("getMailboxUsageDetail(date=…) (no date overload) → 400", RAW)
        for f in wl.FUNCTIONS:
            resp = c.get(env.base + f"/v1.0/reports/{f}(period='D8')", headers=h)
            assert resp.status_code == 400 and resp.json()["error"]["code"] == "InvalidArgument", (f, resp.text)
        record("every workload function: period='D8' → 400 InvalidArgument", RAW)


def test_empty_tenant_workloads(env, record):
    """A tenant with no data: header row only (CSV), empty value (JSON), every function."""
    served(env)
    empty = oracle.Tenant()
    with httpx.Client(verify=env.ca, follow_redirects=True, timeout=60) as c:
        h = auth(env, env.empty)
        for f in wl.FUNCTIONS:
            got = c.get(env.base + path_of(f, "D7"), headers=h)
            want = wl.expected_csv(empty, f, "D7")
            assert got.status_code == 200 and got.content == want and want.count(b"\r\n") == 1, (f, got.status_code, got.content[:200])
            js = c.get(env.base + path_of(f, "D7", None, "beta") + "?$format=application/json", headers=h)
            assert js.status_code == 200 and js.json()["value"] == [], (f, js.text[:200])
        record("a tenant with no data: header row only (CSV), empty value (JSON), the 27 workload functions", RAW)


def test_js_graph_client_workloads(env, record):
    """The JavaScript graph client (conformance/js/graph_client_test.mjs) on the public tools'
    forms of the 27 functions (the forms it can send unchanged)."""
    import json
    import os
    import subprocess
    import tempfile
    served(env)
    set_concealed(env, False)
    exp = tempfile.mkdtemp(prefix="rr-js-workloads-")
    cases = []
    for i, (row, path, key) in enumerate(tool_forms(env)):
        if "%27" in path or "$format" in path or "date='" in path or path.endswith("/"):
            continue
        name = os.path.join(exp, f"{i}.csv")
        with open(name, "wb") as f:
            f.write(wl.expected_csv(env.oracle, *key))
        version, api = path.split("/reports/", 1)
        cases.append({"row": row, "version": version.strip("/"), "api": "/reports/" + api, "expected": name})
    with open(os.path.join(exp, "cases.json"), "w") as f:
        json.dump(cases, f)
    out = os.path.join(exp, "results.json")
    envv = dict(os.environ, NODE_EXTRA_CA_CERTS=env.ca, RR_BASE=env.base + "/", RR_TOKEN=token(env),
                RR_CASES=os.path.join(exp, "cases.json"), RR_RESULTS=out)
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run(["node", "--test", os.path.join(here, "js", "graph_client_test.mjs")], env=envv, capture_output=True, text=True, cwd=here)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    with open(out) as f:
        results = json.load(f)
    assert len(results) == len(cases) and all(r["ok"] for r in results), results
    for r in results:
        record(r["row"], "js graph-client", r["ok"])


def test_curl_workload_forms(env, record):
    """curl -L (as the shell scripts of Centreon's and Datadog's docs call Graph) on the public
    tools' forms of the 27 functions."""
    import shutil
    import subprocess
    served(env)
    set_concealed(env, False)
    curl = shutil.which("curl")
    assert curl, "curl is needed"
    tok = token(env)
    for row, path, (f, period, date) in tool_forms(env):
        out = subprocess.run([curl, "-sS", "-g", "-L", "--cacert", env.ca, "-H", "Authorization: Bearer " + tok,
                              env.base + path.replace("'", "%27")], check=True, capture_output=True).stdout
        assert out == wl.expected_csv(env.oracle, f, period, date), row
        record(row, "curl -L")
