"""The CLI for Microsoft 365 (@pnp/cli-microsoft365, pinned in package.json), unmodified: it has
no setting for another Graph or sign-in host, so it reaches reportroot through a CONNECT proxy
(conformance/connect_proxy.py) set as HTTPS_PROXY: axios (1.21.1, pinned by package-lock.json)
tunnels https requests through CONNECT for it, and msal-node's token requests go the same way
because the CLI hands msal its own axios-based network client (MsalNetworkClient); msal's own
HTTP client, which would not read HTTPS_PROXY, is never used. No host resolution happens on
this side: the proxy is handed the host names. It trusts
reportroot's CA through NODE_EXTRA_CA_CERTS. reportroot serves this one from its own data dir
(same NDJSON) with `--tls self-signed --tls-names graph.microsoft.com,login.microsoftonline.com
--public-url https://graph.microsoft.com`. HOME and TMPDIR are a temp dir; telemetry is off
through `disableTelemetry` in its configstore file and the update check through
CLIMICROSOFT365_NOUPDATE; the proxy refuses and records anything else it is asked for."""
import concurrent.futures
import csv
import io
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile

import pytest

import edge
import oracle
import workloads
from conftest import BIN, pending, run
from connect_proxy import ConnectProxy
from features import FUNCTIONS, feature

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = "CLI for Microsoft 365 (m365)"
M365 = os.path.join(HERE, "node_modules", "@pnp", "cli-microsoft365", "dist", "index.js")
NAME = "m365-cli"


class CliEnv:
    pass


@pytest.fixture(scope="module")
def cli(env):
    c = CliEnv()
    c.dir = tempfile.mkdtemp(prefix="rr-m365-")
    c.data = os.path.join(c.dir, "data")
    # The CLI splits CSV lines on every comma (see expected_split): its tenant's names have none.
    with open(env.ndjson) as f:
        first_user = json.loads(f.readline())
    plain = os.path.join(c.dir, "edge-plain.ndjson")
    edge.write(plain, env.oracle.r, first_user, commas=False)
    files = [env.ndjson, plain]
    run("ingest", "--data", c.data, "--tenant", env.tid, *files)
    c.oracle = oracle.Tenant().load(*files)
    c.app = json.loads(run("app", "add", "--data", c.data, "--tenant", env.tid, "--name", NAME,
                           "--roles", "Reports.Read.All,ReportSettings.ReadWrite.All", "--json"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        c.port = s.getsockname()[1]
    c.proc = subprocess.Popen(
        [BIN, "serve", "--listen", f"127.0.0.1:{c.port}", "--data", c.data, "--tls", "self-signed",
         "--tls-names", "graph.microsoft.com,login.microsoftonline.com", "--public-url", "https://graph.microsoft.com"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, RUST_LOG="warn"))
    banner = c.proc.stdout.readline()
    if not banner.startswith("reportroot listening on https://"):
        err = c.proc.stderr.read()[:300]
        c.proc.wait(timeout=30)
        reason = f"serve --tls-names not served yet: {err.strip()}"
        pending(reason)
        pytest.xfail(reason)
    c.home = os.path.join(c.dir, "home")
    os.makedirs(os.path.join(c.home, "tmp"))
    # configstore's file (configstore v8: $XDG_CONFIG_HOME/configstore/<name>.json).
    os.makedirs(os.path.join(c.home, ".config", "configstore"))
    with open(os.path.join(c.home, ".config", "configstore", "cli-m365-config.json"), "w") as f:
        json.dump({"disableTelemetry": True}, f)
    with ConnectProxy(c.port) as proxy:
        c.proxy = proxy
        c.env = {"PATH": os.environ["PATH"], "HOME": c.home, "TMPDIR": os.path.join(c.home, "tmp"),
                 "XDG_CONFIG_HOME": os.path.join(c.home, ".config"), "LANG": "C.UTF-8",
                 "HTTPS_PROXY": proxy.url, "https_proxy": proxy.url, "HTTP_PROXY": proxy.url, "http_proxy": proxy.url,
                 "NODE_EXTRA_CA_CERTS": os.path.join(c.data, "tls", "ca.pem"),
                 "CLIMICROSOFT365_NOUPDATE": "1", "NO_UPDATE_NOTIFIER": "1"}
        yield c
    c.proc.terminate()
    c.proc.wait(timeout=30)
    shutil.rmtree(c.dir, ignore_errors=True)


def m365(c, *args, check=True):
    p = subprocess.run(["node", M365, *args], env=c.env, capture_output=True, text=True, timeout=180, cwd=c.home)
    if check:
        assert p.returncode == 0, (args, p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    return p


def csv_text_rows(text):
    """Rows of a CSV text, blank lines (the CLI drops some, console.log adds one) left out."""
    return [r for r in csv.reader(io.StringIO(text.lstrip("\ufeff").replace("\r\n", "\n"))) if r]


def oracle_csv(c, report, period=None, date=None):
    if report in workloads.COLUMNS:
        return workloads.expected_csv(c.oracle, report, period, date)
    if report in oracle.NEW_HEADERS:
        return oracle.expected_new(c.oracle, report, period, date)
    return oracle.expected(c.oracle, report, period)


def cast(v):
    """csv-parse's `cast: true`: a field that reads as a number becomes one."""
    try:
        f = float(v)
    except ValueError:
        return v
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", v.strip()):
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


def expected_parsed(body):
    """What the CLI's --output json prints for its csv-parse commands (columns, cast: true)."""
    rows = csv_text_rows(body[3:].decode())
    return [{h: cast(v) for h, v in zip(rows[0], r)} for r in rows[1:]]


def expected_split(body):
    """What the CLI's --output json prints for its period/date report commands: each line split
    on every comma, each field trimmed (PeriodBasedReport.getReport)."""
    lines = [l for l in body[3:].decode().split("\n") if l]
    head = [h.strip() for h in lines[0].split(",")]
    return [{head[j]: f.strip() for j, f in enumerate(l.split(","))} for l in lines[1:]]


def endpoint_row(key, r):
    report, period, date = key
    name = report if report in workloads.COLUMNS else "getOffice365" + report
    if date is not None:
        return f"{name}(date=R)" if date == r else f"{name}(date={date})"
    return f"{name}(period='{period}')" if period else f"{name}()"


def commands(c):
    r = c.oracle.r
    out = [(["office365activationcounts"], ("ActivationCounts", None, None), expected_parsed),
           (["office365activationsusercounts"], ("ActivationsUserCounts", None, None), expected_parsed),
           (["office365activationsuserdetail"], ("ActivationsUserDetail", None, None), expected_parsed)]
    # One period each (a CLI command costs ~3.5 s of CPU to start; the periods' own arithmetic
    # is covered by the SDK tests): D7 has deleted users (conformance/edge.py) and a date.
    out.append((["servicesusercounts", "--period", "D7"], ("ServicesUserCounts", "D7", None), expected_split))
    out.append((["activeusercounts", "--period", "D7"], ("ActiveUserCounts", "D7", None), expected_split))
    out.append((["activeuserdetail", "--period", "D7"], ("ActiveUserDetail", "D7", None), expected_split))
    out.append((["activeuserdetail", "--date", r], ("ActiveUserDetail", None, r), expected_split))
    out = [(["tenant", "report", *args], key, shape) for args, key, shape in out]
    # The workload families' commands (their own command groups, the same report base classes).
    d6 = oracle.shift(r, -6)
    out.append((["outlook", "report", "mailboxusagedetail", "--period", "D7"], ("getMailboxUsageDetail", "D7", None), expected_split))
    out.append((["outlook", "report", "mailactivityuserdetail", "--date", d6], ("getEmailActivityUserDetail", None, d6), expected_split))
    out.append((["onedrive", "report", "usageaccountdetail", "--period", "D7"], ("getOneDriveUsageAccountDetail", "D7", None), expected_split))
    out.append((["spo", "report", "siteusagedetail", "--period", "D30"], ("getSharePointSiteUsageDetail", "D30", None), expected_split))
    return out


def test_cli_m365_reports(cli, env, record):
    c = cli
    for f in ["claims", "reportSettings", *FUNCTIONS]:
        feature(env, f)
    p = m365(c, "login", "--authType", "secret", "--appId", c.app["clientId"], "--secret", c.app["clientSecret"], "--tenant", env.tid, check=False)
    # It reports a failed token request as a sign-in too: the status must name the app.
    status = m365(c, "status", "--output", "json", check=False)
    assert status.returncode == 0 and p.returncode == 0, (p.stdout, p.stderr, status.stdout, status.stderr)
    st = json.loads(status.stdout)
    assert st["connectedAs"] == NAME and st["appId"] == c.app["clientId"] and st["authType"] == "secret", st
    record("m365 login --authType secret; m365 status names the app (app_displayname)", CLIENT)
    m365(c, "tenant", "report", "settings", "set", "--displayConcealedNames", "false")

    bad = oracle.shift(c.oracle.r, -28)
    jobs = [(["tenant", "report", "settings", "get", "--output", "json"], None, None),
            (["tenant", "report", "activeuserdetail", "--date", bad, "--output", "json"], None, None)]
    jobs += [(args + ["--output", out], key, shape) for args, key, shape in commands(c) for out in ["csv", "json"]]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda job: m365(c, *job[0], check=False), jobs))
    failures = []
    for (args, key, shape), p in zip(jobs, results):
        try:
            if args[2] == "settings":
                assert p.returncode == 0 and json.loads(p.stdout)["displayConcealedNames"] is False, (p.stdout, p.stderr)
                record("m365 tenant report settings set/get (PATCH/GET /admin/reportSettings)", CLIENT)
                continue
            if key is None:
                want = f"Invalid date value specified: {bad}. Only support data for the past 28 days."
                assert p.returncode != 0 and want in p.stderr, (p.stdout, p.stderr)
                record("m365 tenant report activeuserdetail --date R-28 → the server's InvalidArgument message", CLIENT)
                continue
            assert p.returncode == 0, (p.stdout[-500:], p.stderr[-1000:])
            body = oracle_csv(c, *key)
            if args[-1] == "csv":
                got, want = csv_text_rows(p.stdout), csv_text_rows(body[3:].decode())
            else:
                got, want = json.loads(p.stdout), shape(body)
            assert len(got) == len(want), (len(got), len(want))
            bad_rows = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
            assert not bad_rows, bad_rows[:3]
            record(endpoint_row(key, c.oracle.r), CLIENT)  # the row of the URL it calls (both outputs)
        except AssertionError as e:
            failures.append((args, str(e)[:1500]))
    assert not failures, failures

    for host in ["graph.microsoft.com", "login.microsoftonline.com"]:
        ctx = ssl.create_default_context(cafile=os.path.join(c.data, "tls", "ca.pem"))
        with socket.create_connection(("127.0.0.1", c.port), timeout=10) as sock:
            with ctx.wrap_socket(sock, server_hostname=host) as tls:
                assert tls.version()
        record(f"serve --tls self-signed --tls-names: certificate valid for {host}", "raw https (httpx)")

    assert not c.proxy.refused, c.proxy.refused
    assert set(c.proxy.tunnels) == {"login.microsoftonline.com:443", "graph.microsoft.com:443"}, c.proxy.tunnels
    record("reaches only login.microsoftonline.com and graph.microsoft.com (through the CONNECT proxy)", CLIENT)
