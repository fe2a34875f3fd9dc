"""The official clients against reportroot, unchanged: Python msgraph-sdk and msgraph-beta-sdk
with azure-identity's ClientSecretCredential against reportroot's token endpoint over https,
the JavaScript graph client, curl, and raw HTTP for every URL form. Every report is compared
byte for byte (or value for value, for JSON) with the independent oracle."""
import asyncio
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

import httpx
import jwt
import pytest
from azure.identity import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph_core import GraphClientFactory

import oracle

SCOPE = "https://graph.microsoft.com/.default"
PERIODS = ["D7", "D30", "D90", "D180"]
HERE = os.path.dirname(os.path.abspath(__file__))


def credential(env, app=None):
    app = app or env.reader
    return ClientSecretCredential(app["tenantId"], app["clientId"], app["clientSecret"],
                                  authority=env.base, disable_instance_discovery=True, connection_verify=env.ca)


def token(env, app=None):
    return credential(env, app).get_token(SCOPE).token


def sdk_client(env, beta=False, app=None):
    auth = AzureIdentityAuthenticationProvider(credential(env, app), scopes=[SCOPE], allowed_hosts=["127.0.0.1"])
    http_client = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=env.ca))
    if beta:
        from msgraph_beta import GraphRequestAdapter, GraphServiceClient
    else:
        from msgraph import GraphRequestAdapter, GraphServiceClient
    adapter = GraphRequestAdapter(auth, http_client)
    adapter.base_url = f"{env.base}/{'beta' if beta else 'v1.0'}"
    return GraphServiceClient(request_adapter=adapter)


def expected(env, report, period=None, legacy=False):
    return oracle.expected(env.oracle, report, period, legacy)


def download(env, path, tok):
    with httpx.Client(verify=env.ca, follow_redirects=True) as c:
        r = c.get(env.base + path, headers={"Authorization": "Bearer " + tok})
        return r.status_code, r.content


# ------------------------------------------------------------------ Python msgraph-sdk (v1.0)

def test_python_sdk_v1(env, record):
    async def go():
        client = sdk_client(env)
        got = await client.reports.get_office365_activations_user_counts.get()
        assert got == expected(env, "ActivationsUserCounts")
        record("getOffice365ActivationsUserCounts()", "python msgraph-sdk v1.0")
        got = await client.reports.get_office365_activation_counts.get()
        assert got == expected(env, "ActivationCounts")
        record("getOffice365ActivationCounts()", "python msgraph-sdk v1.0")
        for p in PERIODS:
            got = await client.reports.get_office365_services_user_counts_with_period(p).get()
            assert got == expected(env, "ServicesUserCounts", p), p
            record(f"getOffice365ServicesUserCounts(period='{p}')", "python msgraph-sdk v1.0")
    asyncio.run(go())


def test_python_sdk_errors_are_odata_errors(env, record):
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    async def go():
        client = sdk_client(env)
        with pytest.raises(ODataError) as e:
            await client.reports.get_office365_services_user_counts_with_period("D8").get()
        assert e.value.response_status_code == 400 and e.value.error.code == "InvalidArgument"
        record("bad period → 400 InvalidArgument", "python msgraph-sdk v1.0")
        client = sdk_client(env, app=env.norole)
        with pytest.raises(ODataError) as e:
            await client.reports.get_office365_activation_counts.get()
        assert e.value.response_status_code == 403 and e.value.error.code == "S2SUnauthorized"
        record("app without Reports.Read.All → 403 S2SUnauthorized", "python msgraph-sdk v1.0")
    asyncio.run(go())


# ------------------------------------------------------------------ Python msgraph-beta-sdk

def test_python_beta_sdk(env, record):
    async def go():
        client = sdk_client(env, beta=True)
        got = await client.reports.get_office365_activations_user_counts.get()
        assert got == expected(env, "ActivationsUserCounts")
        record("getOffice365ActivationsUserCounts()", "python msgraph-beta-sdk")
        got = await client.reports.get_office365_activation_counts.get()
        assert got == expected(env, "ActivationCounts")
        record("getOffice365ActivationCounts()", "python msgraph-beta-sdk")
        for p in PERIODS:
            # The beta SDK types this one as a JSON collection and sends Accept: application/json.
            resp = await client.reports.get_office365_services_user_counts_with_period(p).get()
            row = resp.value[0]
            csv_row = expected(env, "ServicesUserCounts", p)[3:].decode().split("\r\n")[1].split(",")
            got = [str(row.report_refresh_date)]
            for name in ["exchange", "one_drive", "share_point", "skype_for_business", "yammer", "teams", "office365"]:
                got += [str(getattr(row, f"{name}_active")), str(getattr(row, f"{name}_inactive"))]
            got.append(str(row.report_period))
            assert got == csv_row, (p, got, csv_row)
            record(f"getOffice365ServicesUserCounts(period='{p}') (typed JSON)", "python msgraph-beta-sdk")
    asyncio.run(go())


# ------------------------------------------------------------------ curl and raw HTTP: URL forms

URL_FORMS = [
    ("getOffice365ActivationsUserCounts", "/v1.0/reports/getOffice365ActivationsUserCounts", ("ActivationsUserCounts", None, False)),
    ("getOffice365ActivationsUserCounts()", "/v1.0/reports/getOffice365ActivationsUserCounts()", ("ActivationsUserCounts", None, False)),
    ("microsoft.graph.getOffice365ActivationsUserCounts()", "/v1.0/reports/microsoft.graph.getOffice365ActivationsUserCounts()", ("ActivationsUserCounts", None, False)),
    ("getOffice365ActivationsUserCounts/ (trailing slash)", "/v1.0/reports/getOffice365ActivationsUserCounts/", ("ActivationsUserCounts", None, False)),
    ("getOffice365ActivationCounts", "/v1.0/reports/getOffice365ActivationCounts", ("ActivationCounts", None, False)),
    ("getOffice365ActivationCounts()", "/v1.0/reports/getOffice365ActivationCounts()", ("ActivationCounts", None, False)),
    ("microsoft.graph.getOffice365ActivationCounts()", "/v1.0/reports/microsoft.graph.getOffice365ActivationCounts()", ("ActivationCounts", None, False)),
] + [
    (f"getOffice365ServicesUserCounts(period='{p}')", f"/v1.0/reports/getOffice365ServicesUserCounts(period='{p}')", ("ServicesUserCounts", p, False)) for p in PERIODS
] + [
    ("getOffice365ServicesUserCounts(period=%27D7%27)", "/v1.0/reports/getOffice365ServicesUserCounts(period=%27D7%27)", ("ServicesUserCounts", "D7", False)),
    ("microsoft.graph.getOffice365ServicesUserCounts(period='D30')", "/v1.0/reports/microsoft.graph.getOffice365ServicesUserCounts(period='D30')", ("ServicesUserCounts", "D30", False)),
    ("getOffice365ServicesUserCounts(period='D7')/ (trailing slash)", "/v1.0/reports/getOffice365ServicesUserCounts(period='D7')/", ("ServicesUserCounts", "D7", False)),
    ("beta getOffice365ServicesUserCounts(period='D90') as CSV", "/beta/reports/getOffice365ServicesUserCounts(period='D90')?$format=text/csv", ("ServicesUserCounts", "D90", False)),
    ("legacy v1.0 Office365ActivationsUserCounts (4 columns)", "/v1.0/reports/Office365ActivationsUserCounts", ("ActivationsUserCounts", None, True)),
]


def test_raw_https_every_url_form(env, record):
    tok = token(env)
    for row, path, (report, period, legacy) in URL_FORMS:
        status, body = download(env, path, tok)
        assert status == 200 and body == expected(env, report, period, legacy), row
        record(row, "raw https (httpx)")


def test_curl_every_url_form(env, record):
    curl = shutil.which("curl")
    assert curl, "curl is needed"
    tok = token(env)
    for row, path, (report, period, legacy) in URL_FORMS:
        out = subprocess.run([curl, "-sS", "-g", "-L", "--cacert", env.ca, "-H", "Authorization: Bearer " + tok, env.base + path.replace("'", "%27")],
                             check=True, capture_output=True).stdout
        assert out == expected(env, report, period, legacy), row
        record(row, "curl -L")


def test_beta_json_shapes(env, record):
    tok = token(env)
    with httpx.Client(verify=env.ca) as c:
        r = c.get(env.base + "/beta/reports/Office365ActivationsUserCounts", headers={"Authorization": "Bearer " + tok})
        assert r.status_code == 200
        body = r.json()
        assert body["@odata.context"].endswith("/beta/$metadata#Collection(microsoft.graph.office365ActivationsUserCounts)")
        rows = expected(env, "ActivationsUserCounts", None, True)[3:].decode().split("\r\n")[1:-1]
        assert len(body["value"]) == len(rows)
        for v, line in zip(body["value"], rows):
            assert set(v) == {"reportRefreshDate", "productType", "assigned", "activated"}
            assert str(v["assigned"]) in line and v["productType"] in line
        record("legacy beta Office365ActivationsUserCounts (200 JSON)", "raw https (httpx)")
        r = c.get(env.base + "/beta/reports/getOffice365ActivationCounts?$format=application/json", headers={"Authorization": "Bearer " + tok})
        v = r.json()["value"]
        assert r.status_code == 200 and all(set(x) == {"reportRefreshDate", "productType", "windows", "mac", "android", "ios", "windows10Mobile"} for x in v)
        record("beta getOffice365ActivationCounts $format=application/json", "raw https (httpx)")


# ------------------------------------------------------------------ sign-in

def oauth(env, tenant, form):
    with httpx.Client(verify=env.ca) as c:
        return c.post(f"{env.base}/{tenant}/oauth2/v2.0/token", data=form)


def test_token_endpoint_errors_and_jwks(env, record):
    good = {"grant_type": "client_credentials", "client_id": env.reader["clientId"], "client_secret": env.reader["clientSecret"], "scope": SCOPE, "client_info": "1"}
    cases = [
        ("wrong secret → 401 invalid_client", dict(good, client_secret="nope"), 401, "invalid_client"),
        ("unknown client → 400 unauthorized_client", dict(good, client_id="00000000-0000-0000-0000-000000000000"), 400, "unauthorized_client"),
        ("removed app → 400 unauthorized_client", dict(good, client_id=env.removed["clientId"], client_secret=env.removed["clientSecret"]), 400, "unauthorized_client"),
        ("scope for another audience → 400 invalid_resource", dict(good, scope="https://management.azure.com/.default"), 400, "invalid_resource"),
        ("scope without /.default → 400 invalid_scope", dict(good, scope="https://graph.microsoft.com/Reports.Read.All"), 400, "invalid_scope"),
    ]
    for row, form, status, error in cases:
        r = oauth(env, env.tid, form)
        body = r.json()
        assert r.status_code == status and body["error"] == error and "access_token" not in body, (row, r.text)
        assert {"error_description", "error_codes", "timestamp", "trace_id", "correlation_id"} <= set(body)
        assert r.headers.get("cache-control", "").startswith("no-store")
        record(row, "raw https (httpx)")
    r = oauth(env, env.tid, good)
    assert r.status_code == 200
    tok = r.json()["access_token"]
    with httpx.Client(verify=env.ca) as c:
        conf = c.get(f"{env.base}/{env.tid}/v2.0/.well-known/openid-configuration").json()
        jwks = c.get(conf["jwks_uri"]).json()
    assert conf["token_endpoint"] == f"{env.base}/{env.tid}/oauth2/v2.0/token"
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(tok, key.key, algorithms=["RS256"], audience="https://graph.microsoft.com", issuer=conf["issuer"])
    assert claims["tid"] == env.tid and sorted(claims["roles"]) == ["ReportSettings.ReadWrite.All", "Reports.Read.All"]
    record("token from the endpoint verifies against the JWKS", "raw https (httpx)")


def test_certificate_valid_for_localhost_and_127(env, record):
    for host in ("localhost", "127.0.0.1"):
        ctx = ssl.create_default_context(cafile=env.ca)
        with socket.create_connection(("127.0.0.1", env.port), timeout=5) as sock:
            with ctx.wrap_socket(sock, server_hostname=host) as tls:
                assert tls.version()
        record(f"TLS certificate valid for {host}", "raw https (httpx)")


# ------------------------------------------------------------------ JavaScript graph client

def test_js_graph_client(env, record):
    node = shutil.which("node")
    assert node, "node is needed"
    exp = tempfile.mkdtemp(prefix="rr-js-expected-")
    cases = []
    for i, (row, path, (report, period, legacy)) in enumerate(URL_FORMS):
        if legacy or "%27" in path or "$format" in path:
            continue
        name = os.path.join(exp, f"{i}.csv")
        with open(name, "wb") as f:
            f.write(expected(env, report, period, legacy))
        version, api = path.split("/reports/", 1)
        cases.append({"row": row, "version": version.strip("/"), "api": "/reports/" + api, "expected": name})
    with open(os.path.join(exp, "cases.json"), "w") as f:
        json.dump(cases, f)
    out = os.path.join(exp, "results.json")
    envv = dict(os.environ, NODE_EXTRA_CA_CERTS=env.ca, RR_BASE=env.base + "/", RR_TOKEN=token(env), RR_CASES=os.path.join(exp, "cases.json"), RR_RESULTS=out)
    p = subprocess.run([node, "--test", os.path.join(HERE, "js", "graph_client_test.mjs")], env=envv, capture_output=True, text=True, cwd=HERE)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    with open(out) as f:
        results = json.load(f)
    assert len(results) == len(cases) and all(r["ok"] for r in results), results
    for r in results:
        record(r["row"], "js graph-client", r["ok"])
