"""The per-user and per-day Office 365 reports (getOffice365ActivationsUserDetail,
getOffice365ActiveUserCounts, getOffice365ActiveUserDetail by period and by date), JSON
paging, concealed names (/admin/reportSettings) and the Entra v2 token claims, through the
official Python SDKs' request builders and raw HTTPS, against the independent oracle."""
import asyncio
import csv
import datetime
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse

import httpx
import jwt
import pytest

import oracle
from features import FUNCTIONS, auth, feature, http, path_of, set_concealed
from test_clients import PERIODS, SCOPE, credential, sdk_client, token

V1 = "python msgraph-sdk v1.0"
BETA = "python msgraph-beta-sdk"
RAW = "raw https (httpx)"
DIGEST = re.compile(r"^[0-9A-F]{32}$")
DETAIL = ["ActivationsUserDetail", "ActiveUserDetail"]


# ------------------------------------------------------------------ helpers

def label(report, period=None, date=None, env=None):
    if date is not None:
        rel = (oracle.day(date) - oracle.day(env.oracle.r)).days
        return f"{FUNCTIONS[report]}(date=R{rel:+d})" if rel else f"{FUNCTIONS[report]}(date=R)"
    if period is not None:
        return f"{FUNCTIONS[report]}(period='{period}')"
    return f"{FUNCTIONS[report]}()"


def csv_rows(body):
    assert body.startswith(oracle.BOM), body[:40]
    text = body[3:].decode()
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), "CRLF line ends"
    return list(csv.reader(io.StringIO(text, newline="")))


def check_rows(env, report, got_rows, want, concealed, digests):
    """`want`: [(uid, row)] from the oracle. Names compared exactly, or (concealed) as one
    32-hex digest in both name columns, the same for a user in every detail report."""
    assert got_rows[0] == oracle.NEW_HEADERS[report].split(","), got_rows[0]
    got = got_rows[1:]
    assert len(got) == len(want), (report, len(got), len(want))
    for i, (g, (uid, w)) in enumerate(zip(got, want)):
        if concealed:
            assert DIGEST.match(g[1]) and g[1] == g[2], (report, i, g[:3])
            assert digests.setdefault(uid, g[1]) == g[1], (report, uid, "digest differs between reports")
            g, w = g[:1] + g[3:], w[:1] + w[3:]
        assert g == w, (report, i, g, w)


def want_rows(env, report, period=None, date=None):
    if report == "ActivationsUserDetail":
        return oracle.activations_user_detail(env.oracle)
    if report == "ActiveUserDetail":
        return oracle.active_user_detail(env.oracle, period, date)
    return [(None, r) for r in oracle.active_user_counts(env.oracle, period)]


def dates(env):
    r = env.oracle.r
    return [r, oracle.shift(r, -6), oracle.shift(r, -7), oracle.shift(r, -27)]


def bad_dates(env):
    r = env.oracle.r
    return [oracle.shift(r, -28), oracle.shift(r, 1), "2020-02-29"]


# ------------------------------------------------------------------ the generated data covers the boundaries

def test_data_exercises_the_boundaries(env):
    """The generated tenant (plus conformance/edge.py) has deleted-within-period rows for every
    period and date, removed licenses, and activations of each kind."""
    t = env.oracle
    gen = oracle.Tenant().load(env.ndjson)
    counts = {}
    for p in PERIODS:
        counts[p] = sum(r[3] == "True" for _u, r in oracle.active_user_detail(gen, p))
    print("generated tenant alone: deleted-within-period rows", counts,
          "date=R..R-27:", sum(1 for d in range(28) for _u, r in oracle.active_user_detail(gen, date=oracle.shift(gen.r, -d)) if r[3] == "True"))
    for p in PERIODS:
        assert any(r[3] == "True" for _u, r in oracle.active_user_detail(t, p)), p
    for d in dates(env):
        assert any(r[3] == "True" for _u, r in oracle.active_user_detail(t, date=d)), d
    assert any(rem is not None and rem <= t.r for (_a, rem) in t.licenses.values())
    rows = [r for _u, r in oracle.activations_user_detail(t)]
    assert any(r[10] == "True" for r in rows) and any(r[4] == "" for r in rows)
    assert any(r[23] == "" for _u, r in oracle.active_user_detail(t, "D7"))


# ------------------------------------------------------------------ Python msgraph-sdk v1.0 (CSV)

def sdk_v1_builders(client, env):
    """(report, period, date, make builder) for every new function the v1.0 SDK can call. Each
    builder is made just before its call: kiota's builders write their parameter into the
    parent's shared path-parameter dict, so one made earlier would take a later one's period."""
    r = client.reports
    out = [("ActivationsUserDetail", None, None, lambda: r.get_office365_activations_user_detail)]
    for p in PERIODS:
        out.append(("ActiveUserCounts", p, None, lambda p=p: r.get_office365_active_user_counts_with_period(p)))
    for p in PERIODS:
        out.append(("ActiveUserDetail", p, None, lambda p=p: r.get_office365_active_user_detail_with_period(p)))
    for d in dates(env):
        out.append(("ActiveUserDetail", None, d, lambda d=d: r.get_office365_active_user_detail_with_date(oracle.day(d))))
    return out


@pytest.mark.parametrize("concealed", [False, True], ids=["names", "concealed"])
def test_python_sdk_v1_new_reports(env, record, concealed):
    for f in FUNCTIONS:
        feature(env, f)
    feature(env, "reportSettings")
    set_concealed(env, concealed)
    digests = {}

    async def go():
        client = sdk_client(env)
        for report, period, date, builder in sdk_v1_builders(client, env):
            body = await builder().get()
            want = want_rows(env, report, period, date)
            if not concealed or report == "ActiveUserCounts":
                assert body == oracle.expected_new(env.oracle, report, period, date), label(report, period, date, env)
            check_rows(env, report, csv_rows(body), want, concealed and report in DETAIL, digests)
            record(label(report, period, date, env) + (" (concealed names)" if concealed and report in DETAIL else ""), V1)
    asyncio.run(go())
    if concealed:
        # Every existing user of ActivationsUserDetail is in ActiveUserDetail(D7) too: same digest.
        assert set(u for u, _r in oracle.activations_user_detail(env.oracle)) <= set(digests)
        assert len(set(digests.values())) == len(digests), "two users share a digest"
        # The JSON forms conceal the same way, with the same digests.
        with http(env) as c:
            for report, period in [("ActivationsUserDetail", None), ("ActiveUserDetail", "D30")]:
                body = c.get(env.base + path_of(report, period, None, "beta") + "?$format=application/json&$top=1000", headers=auth(env)).json()
                want = oracle.expected_json(env.oracle, report, period)
                uids = oracle.detail_uids(env.oracle, report, period)
                assert len(body["value"]) == len(want) == len(uids)
                for g, w, uid in zip(body["value"], want, uids):
                    assert g["userPrincipalName"] == g["displayName"] == digests[uid], (report, uid, g)
                    assert dict(g, userPrincipalName=None, displayName=None) == dict(w, userPrincipalName=None, displayName=None)
                record(label(report, period) + " beta JSON (concealed names)", RAW)
    set_concealed(env, False)


def test_python_sdk_v1_bad_dates(env, record):
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    feature(env, "ActiveUserDetail")

    async def go():
        client = sdk_client(env)
        for d in bad_dates(env):
            with pytest.raises(oracle.DateError) as want:
                oracle.check_detail_date(env.oracle, d)
            with pytest.raises(ODataError) as e:
                await client.reports.get_office365_active_user_detail_with_date(oracle.day(d)).get()
            assert e.value.response_status_code == 400 and e.value.error.code == "InvalidArgument", d
            assert e.value.error.message == str(want.value), (e.value.error.message, str(want.value))
        record("getOffice365ActiveUserDetail(date=R-28 / R+1 / 2020-02-29) → 400 InvalidArgument", V1)
    asyncio.run(go())


# ------------------------------------------------------------------ Python msgraph-beta-sdk (typed JSON)

def typed_detail(v):
    """An Office365ActiveUserDetail model as the contract's JSON entry."""
    d = lambda x: None if x is None else x.isoformat()
    out = {"reportRefreshDate": d(v.report_refresh_date), "userPrincipalName": v.user_principal_name,
           "displayName": v.display_name, "isDeleted": v.is_deleted, "deletedDate": d(v.deleted_date)}
    snake = {"exchange": "exchange", "oneDrive": "one_drive", "sharePoint": "share_point",
             "skypeForBusiness": "skype_for_business", "yammer": "yammer", "teams": "teams"}
    for s, py in snake.items():
        cap = s[0].upper() + s[1:]
        out[f"has{cap}License"] = getattr(v, f"has_{py}_license")
        out[f"{s}LastActivityDate"] = d(getattr(v, f"{py}_last_activity_date"))
        out[f"{s}LicenseAssignDate"] = d(getattr(v, f"{py}_license_assign_date"))
    out["assignedProducts"] = list(v.assigned_products or [])
    return out


def typed_counts(v):
    return {"reportRefreshDate": v.report_refresh_date.isoformat(), "office365": v.office365, "exchange": v.exchange,
            "oneDrive": v.one_drive, "sharePoint": v.share_point, "skypeForBusiness": v.skype_for_business,
            "yammer": v.yammer, "teams": v.teams, "reportDate": v.report_date.isoformat(), "reportPeriod": v.report_period}


def test_python_beta_sdk_typed_json(env, record):
    for f in FUNCTIONS:
        feature(env, f)
    feature(env, "paging")
    feature(env, "reportSettings")
    set_concealed(env, False)

    from kiota_abstractions.base_request_configuration import RequestConfiguration

    async def pages(builder, n):
        """The first n pages of $top=25 through the SDK, following @odata.nextLink with the
        builder's with_url. (Every page of every period is walked by test_raw_beta_json_paging_walk:
        this SDK spends ~50 ms of CPU on each typed entry, whose Entity base has ~3000 fields.)"""
        query = type(builder).__dict__[type(builder).__name__ + "GetQueryParameters"](top=25)
        page = await builder.get(RequestConfiguration(query_parameters=query))
        entries = list(page.value)
        for _ in range(n - 1):
            assert page.odata_next_link.startswith(env.base + "/beta/reports/"), page.odata_next_link
            page = await builder.with_url(page.odata_next_link).get()
            entries += page.value
        assert page.odata_next_link, "more pages follow"
        return entries

    async def go():
        client = sdk_client(env, beta=True)
        for p in ["D7", "D30"]:
            resp = await client.reports.get_office365_active_user_counts_with_period(p).get()
            assert [typed_counts(v) for v in resp.value] == oracle.expected_json(env.oracle, "ActiveUserCounts", p), p
            record(f"getOffice365ActiveUserCounts(period='{p}') (typed JSON)", BETA)
        for p in PERIODS:
            n = 2 if p == "D7" else 1
            entries = await pages(client.reports.get_office365_active_user_detail_with_period(p), n)
            assert [typed_detail(v) for v in entries] == oracle.expected_json(env.oracle, "ActiveUserDetail", p)[:25 * n], p
            record(f"getOffice365ActiveUserDetail(period='{p}') (typed JSON, $top=25" + (", next page)" if n > 1 else ")"), BETA)
        for d in dates(env):
            entries = await pages(client.reports.get_office365_active_user_detail_with_date(oracle.day(d)), 1)
            assert [typed_detail(v) for v in entries] == oracle.expected_json(env.oracle, "ActiveUserDetail", date=d)[:25], d
            record(label("ActiveUserDetail", None, d, env) + " (typed JSON, $top=25)", BETA)
        # Typed only as bytes by this SDK: its CSV, and its JSON through the builder's with_url.
        b = client.reports.get_office365_activations_user_detail
        assert await b.get() == oracle.expected_new(env.oracle, "ActivationsUserDetail")
        record("getOffice365ActivationsUserDetail()", BETA)
        raw = await b.with_url(env.base + "/beta/reports/getOffice365ActivationsUserDetail?$format=application/json&$top=1000").get()
        body = json.loads(raw)
        assert body["value"] == oracle.expected_json(env.oracle, "ActivationsUserDetail") and "@odata.nextLink" not in body
        record("getOffice365ActivationsUserDetail() $format=application/json&$top=1000", BETA)
        from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError
        for d in bad_dates(env):
            with pytest.raises(ODataError) as e:
                await client.reports.get_office365_active_user_detail_with_date(oracle.day(d)).get()
            assert e.value.response_status_code == 400 and e.value.error.code == "InvalidArgument", d
        record("getOffice365ActiveUserDetail(date=R-28 / R+1 / 2020-02-29) → 400 InvalidArgument", BETA)
    asyncio.run(go())


# ------------------------------------------------------------------ raw HTTPS: URL forms, paging, errors

def url_forms(env):
    """(row, path, (report, period, date)) of the new functions' URL forms."""
    r = env.oracle.r
    return [
        ("getOffice365ActivationsUserDetail()", "/v1.0/reports/getOffice365ActivationsUserDetail()", ("ActivationsUserDetail", None, None)),
        ("getOffice365ActivationsUserDetail", "/v1.0/reports/getOffice365ActivationsUserDetail", ("ActivationsUserDetail", None, None)),
        ("microsoft.graph.getOffice365ActivationsUserDetail()", "/v1.0/reports/microsoft.graph.getOffice365ActivationsUserDetail()", ("ActivationsUserDetail", None, None)),
        ("beta getOffice365ActivationsUserDetail() as CSV", "/beta/reports/getOffice365ActivationsUserDetail()?$format=text/csv", ("ActivationsUserDetail", None, None)),
        ("getOffice365ActiveUserCounts(period='D7')", "/v1.0/reports/getOffice365ActiveUserCounts(period='D7')", ("ActiveUserCounts", "D7", None)),
        ("getOffice365ActiveUserCounts(period=%27D30%27)", "/v1.0/reports/getOffice365ActiveUserCounts(period=%27D30%27)", ("ActiveUserCounts", "D30", None)),
        ("microsoft.graph.getOffice365ActiveUserCounts(period='D90')", "/v1.0/reports/microsoft.graph.getOffice365ActiveUserCounts(period='D90')", ("ActiveUserCounts", "D90", None)),
        ("getOffice365ActiveUserDetail(period='D7')", "/v1.0/reports/getOffice365ActiveUserDetail(period='D7')", ("ActiveUserDetail", "D7", None)),
        ("beta getOffice365ActiveUserDetail(period='D30') as CSV", "/beta/reports/getOffice365ActiveUserDetail(period='D30')?$format=text/csv", ("ActiveUserDetail", "D30", None)),
        ("getOffice365ActiveUserDetail(date=R)", f"/v1.0/reports/getOffice365ActiveUserDetail(date={r})", ("ActiveUserDetail", None, r)),
        ("getOffice365ActiveUserDetail(date='R-6') (quoted date)", f"/v1.0/reports/getOffice365ActiveUserDetail(date='{oracle.shift(r, -6)}')", ("ActiveUserDetail", None, oracle.shift(r, -6))),
        ("getOffice365ActiveUserDetail(date=R-7)", f"/v1.0/reports/getOffice365ActiveUserDetail(date={oracle.shift(r, -7)})", ("ActiveUserDetail", None, oracle.shift(r, -7))),
    ]


def test_curl_new_url_forms(env, record):
    for f in FUNCTIONS:
        feature(env, f)
    feature(env, "reportSettings")
    set_concealed(env, False)
    curl = shutil.which("curl")
    assert curl, "curl is needed"
    tok = token(env)
    for row, path, (report, period, date) in url_forms(env):
        out = subprocess.run([curl, "-sS", "-g", "-L", "--cacert", env.ca, "-H", "Authorization: Bearer " + tok,
                              env.base + path.replace("'", "%27")], check=True, capture_output=True).stdout
        assert out == oracle.expected_new(env.oracle, report, period, date), row
        record(row, "curl -L")


def test_js_graph_client_new_reports(env, record):
    """The JavaScript graph client (conformance/js/graph_client_test.mjs) on the new functions."""
    for f in FUNCTIONS:
        feature(env, f)
    feature(env, "reportSettings")
    set_concealed(env, False)
    exp = tempfile.mkdtemp(prefix="rr-js-families-")
    cases = []
    for i, (row, path, key) in enumerate(url_forms(env)):
        if "%27" in path or "$format" in path or "date='" in path:
            continue
        name = os.path.join(exp, f"{i}.csv")
        with open(name, "wb") as f:
            f.write(oracle.expected_new(env.oracle, *key))
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


def test_raw_url_forms_and_v1_accept(env, record):
    for f in FUNCTIONS:
        feature(env, f)
    feature(env, "reportSettings")
    set_concealed(env, False)
    t = env.oracle
    forms = url_forms(env)
    with httpx.Client(verify=env.ca, follow_redirects=True, timeout=60) as c:
        h = auth(env)
        for row, path, (report, period, date) in forms:
            resp = c.get(env.base + path, headers=h)
            assert resp.status_code == 200 and resp.content == oracle.expected_new(t, report, period, date), (row, resp.status_code, resp.content[:200])
            record(row, RAW)
    with httpx.Client(verify=env.ca, timeout=60) as c:
        for report, period in [("ActivationsUserDetail", None), ("ActiveUserDetail", "D7"), ("ActiveUserCounts", "D7")]:
            for accept in ["application/json", "application/json;odata.metadata=none", "*/*"]:
                resp = c.get(env.base + path_of(report, period), headers=dict(auth(env), Accept=accept))
                assert resp.status_code == 302, (report, accept, resp.status_code, resp.text[:200])
                got = c.get(resp.headers["location"])
                assert got.status_code == 200 and got.content == oracle.expected_new(t, report, period), (report, accept)
            record(f"v1.0 {FUNCTIONS[report]} with Accept: application/json → 302 CSV", RAW)


def beta_json(c, env, report, period=None, date=None, query="$format=application/json"):
    return c.get(env.base + path_of(report, period, date, "beta") + "?" + query, headers=auth(env))


def test_raw_beta_json_paging_walk(env, record):
    for f in FUNCTIONS:
        feature(env, f)
    feature(env, "paging")
    feature(env, "reportSettings")
    set_concealed(env, False)
    t = env.oracle
    with http(env) as c:
        for report, period, date in [("ActiveUserDetail", "D180", None), ("ActiveUserDetail", "D7", None),
                                     ("ActiveUserDetail", None, oracle.shift(t.r, -27)), ("ActivationsUserDetail", None, None)]:
            want = oracle.expected_json(t, report, period, date)
            uids = oracle.detail_uids(t, report, period, date)
            assert len(uids) == len(want) > 100
            got, pages = [], 0
            resp = beta_json(c, env, report, period, date, "$format=application/json&$top=50")
            while True:
                assert resp.status_code == 200, resp.text
                body = resp.json()
                pages += 1
                assert 1 <= len(body["value"]) <= 50
                got += body["value"]
                nxt = body.get("@odata.nextLink")
                if not nxt:
                    break
                assert len(body["value"]) == 50
                assert nxt.startswith(env.base + "/beta/reports/"), nxt
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query)
                assert [k for k in query if k.lower() == "$skiptoken"], nxt
                resp = c.get(nxt, headers=auth(env))
            assert pages == -(-len(want) // 50)
            assert got == want, label(report, period, date, env)
            names = [v["userPrincipalName"] for v in got]
            assert len(set(names)) == len(names) == len(uids), "every user exactly once"
            record(label(report, period, date, env) + " beta JSON, $top=50 walk via @odata.nextLink", RAW)
        # A public tool asks for 999 at once.
        for report, period in [("ActiveUserDetail", "D7"), ("ActivationsUserDetail", None)]:
            resp = beta_json(c, env, report, period, None, "$format=application/json&$top=999")
            body = resp.json()
            want = oracle.expected_json(t, report, period)
            assert resp.status_code == 200 and len(want) <= 999
            assert body["value"] == want and "@odata.nextLink" not in body
            assert body["@odata.context"].startswith(env.base + "/beta/$metadata#")
            record(label(report, period) + " beta $format=application/json&$top=999", RAW)
        # Default page: 200 entries.
        body = beta_json(c, env, "ActiveUserDetail", "D30").json()
        assert len(body["value"]) == 200 and body["value"] == oracle.expected_json(t, "ActiveUserDetail", "D30")[:200] and body["@odata.nextLink"]
        record("beta JSON detail without $top: 200 entries and @odata.nextLink", RAW)
        counts = beta_json(c, env, "ActiveUserCounts", "D30").json()
        assert counts["value"] == oracle.expected_json(t, "ActiveUserCounts", "D30")
        record("getOffice365ActiveUserCounts(period='D30') beta $format=application/json", RAW)
        # Bad $top / $skipToken.
        for q in ["$top=0", "$top=1001", "$top=abc", "$top=-1", "$skipToken=garbage", "$skiptoken="]:
            resp = beta_json(c, env, "ActiveUserDetail", "D7", None, "$format=application/json&" + q)
            assert resp.status_code == 400 and resp.json()["error"]["code"] == "BadRequest", (q, resp.status_code, resp.text[:200])
        record("bad $top / $skipToken → 400 BadRequest", RAW)
        # A token issued for another call (another period, another report).
        nxt = beta_json(c, env, "ActiveUserDetail", "D180", None, "$format=application/json&$top=5").json()["@odata.nextLink"]
        token_q = urllib.parse.urlsplit(nxt).query
        token_q = "&".join(kv for kv in token_q.split("&") if kv.lower().startswith("%24skiptoken") or kv.lower().startswith("$skiptoken"))
        for report, period in [("ActiveUserDetail", "D7"), ("ActivationsUserDetail", None)]:
            resp = beta_json(c, env, report, period, None, "$format=application/json&$top=5&" + token_q)
            assert resp.status_code == 400 and resp.json()["error"]["code"] == "BadRequest", (report, resp.status_code, resp.text[:200])
        record("$skipToken of another call → 400 BadRequest", RAW)
        # CSV is never paged.
        resp = c.get(env.base + "/beta/reports/getOffice365ActiveUserDetail(period='D7')?$format=text/csv&$top=5", headers=auth(env), follow_redirects=True)
        assert resp.status_code == 200 and resp.content == oracle.expected_new(t, "ActiveUserDetail", "D7"), resp.status_code
        record("CSV with $top is not paged", RAW)


def test_raw_bad_dates(env, record):
    feature(env, "ActiveUserDetail")
    with http(env) as c:
        for d in bad_dates(env):
            want = f"Invalid date value specified: {d}. Only support data for the past 28 days."
            for version in ["v1.0", "beta"]:
                resp = c.get(env.base + f"/{version}/reports/getOffice365ActiveUserDetail(date={d})", headers=auth(env))
                err = resp.json()["error"]
                assert resp.status_code == 400 and err["code"] == "InvalidArgument" and err["message"] == want, (version, d, resp.text)
        record("getOffice365ActiveUserDetail(date=R-28 / R+1 / 2020-02-29) → 400 InvalidArgument", RAW)


def test_empty_tenant_header_only(env, record):
    for f in FUNCTIONS:
        feature(env, f)
    empty = oracle.Tenant()
    r = env.oracle.r
    cases = [("ActivationsUserDetail", None, None), ("ActiveUserCounts", "D7", None), ("ActiveUserDetail", "D7", None),
             ("ActiveUserDetail", None, r)]
    with httpx.Client(verify=env.ca, follow_redirects=True, timeout=60) as c:
        h = auth(env, env.empty)
        for report, period, date in cases:
            got = c.get(env.base + path_of(report, period, date), headers=h)
            want = oracle.expected_new(empty, report, period, date)
            assert got.status_code == 200 and got.content == want and want.count(b"\r\n") == 1, (report, got.status_code, got.content[:200])
            js = c.get(env.base + path_of(report, period, date, "beta") + "?$format=application/json", headers=h)
            assert js.status_code == 200 and js.json()["value"] == [], (report, js.text[:200])
        record("a tenant with no data: header row only (CSV), empty value (JSON), every new report", RAW)


# ------------------------------------------------------------------ concealed names: settings endpoint

def test_report_settings_roles(env, record):
    feature(env, "reportSettings")
    with http(env) as c:
        for version in ["v1.0", "beta"]:
            url = f"{env.base}/{version}/admin/reportSettings"
            r = c.get(url, headers=auth(env, env.settings_reader))
            assert r.status_code == 200 and isinstance(r.json()["displayConcealedNames"], bool), r.text
            record(f"{version} GET /admin/reportSettings with ReportSettings.Read.All", RAW)
            r = c.patch(url, headers=auth(env, env.settings_reader), json={"displayConcealedNames": True})
            assert r.status_code == 403, r.text
            record(f"{version} PATCH /admin/reportSettings with only ReportSettings.Read.All → 403", RAW)
            for method in ["GET", "PATCH"]:
                r = c.request(method, url, headers=auth(env, env.norole), json={"displayConcealedNames": True})
                assert r.status_code == 403, (method, r.text)
            record(f"{version} /admin/reportSettings without a ReportSettings role → 403", RAW)
            for on in [True, False]:
                r = c.patch(url, headers=auth(env), json={"displayConcealedNames": on})
                assert r.status_code == 204 and r.content == b"", r.text
                assert c.get(url, headers=auth(env)).json()["displayConcealedNames"] is on
            record(f"{version} PATCH /admin/reportSettings → 204, GET reads it back", RAW)


def test_report_settings_default_is_concealed(env, record):
    feature(env, "reportSettings")
    assert env.initial_settings == {"displayConcealedNames": True} or env.initial_settings.get("displayConcealedNames") is True, env.initial_settings
    record("displayConcealedNames defaults to true", RAW)


# ------------------------------------------------------------------ token claims and audiences

def test_token_claims_v2_app_only(env, record):
    feature(env, "claims")
    with http(env) as c:
        conf = c.get(f"{env.base}/{env.tid}/v2.0/.well-known/openid-configuration").json()
        key = jwt.PyJWK(c.get(conf["jwks_uri"]).json()["keys"][0])
    claims = jwt.decode(token(env), key.key, algorithms=["RS256"], audience="https://graph.microsoft.com", issuer=conf["issuer"])
    again = jwt.decode(credential(env).get_token(SCOPE).token, key.key, algorithms=["RS256"], audience="https://graph.microsoft.com", issuer=conf["issuer"])
    guid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    assert claims["app_displayname"] == "conformance", claims
    assert claims["tid"] == env.tid and claims["idtyp"] == "app" and claims["ver"] == "2.0", claims
    assert claims["azp"] == env.reader["clientId"] and claims["azpacr"] == "1", claims
    assert claims.get("appid", claims["azp"]) == claims["azp"], claims
    assert guid.match(claims["oid"]) and claims["sub"] == claims["oid"] == again["oid"], (claims, again)
    assert claims["uti"] and claims["uti"] != again["uti"], (claims, again)
    assert sorted(claims["roles"]) == ["ReportSettings.ReadWrite.All", "Reports.Read.All"], claims
    assert "scp" not in claims and "upn" not in claims, claims
    record("token carries app_displayname and the v2 app-only claims", RAW)
    # The public URL as audience: scope=https://HOST:PORT/.default.
    form = {"grant_type": "client_credentials", "client_id": env.reader["clientId"], "client_secret": env.reader["clientSecret"],
            "scope": f"127.0.0.1:{env.port}/.default".join(["https://", ""])}
    with http(env) as c:
        r = c.post(f"{env.base}/{env.tid}/oauth2/v2.0/token", data=form)
        assert r.status_code == 200, r.text
        tok = r.json()["access_token"]
        got = c.get(env.base + "/v1.0/reports/getOffice365ActivationCounts", headers={"Authorization": "Bearer " + tok}, follow_redirects=True)
        assert got.status_code == 200 and got.content == oracle.expected(env.oracle, "ActivationCounts"), got.text[:200]
    record("scope=https://HOST:PORT/.default (the public URL) → token that reads reports", RAW)


# ------------------------------------------------------------------ a token from before a data change

def test_skiptoken_from_before_a_data_change(env, record):
    """Last in the session: ingests one more record (through the HTTP ingest endpoint) and
    updates the oracle the same way."""
    feature(env, "paging")
    with http(env) as c:
        first = beta_json(c, env, "ActiveUserDetail", "D7", None, "$format=application/json&$top=10").json()
        nxt = first["@odata.nextLink"]
        assert c.get(nxt, headers=auth(env)).status_code == 200
        extra = {"type": "activity", "userId": "e0e0e0e0-0000-4000-8000-000000000012", "service": "exchange", "date": oracle.shift(env.oracle.r, -400)}
        r = c.post(f"{env.base}/admin/v1/tenants/{env.tid}/ingest", content=json.dumps(extra) + "\n",
                   headers=dict(auth(env, env.writer), **{"Content-Type": "application/x-ndjson"}))
        assert r.status_code == 200, r.text
        path = env.edge + ".extra"
        with open(path, "w") as f:
            f.write(json.dumps(extra) + "\n")
        env.oracle = oracle.Tenant().load(*env.files, path)
        r = c.get(nxt, headers=auth(env))
        assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest", (r.status_code, r.text[:300])
        record("$skipToken from before a data change → 400", RAW)
        got = beta_json(c, env, "ActiveUserDetail", "D7", None, "$format=application/json&$top=1000").json()["value"]
        assert got == oracle.expected_json(env.oracle, "ActiveUserDetail", "D7")
