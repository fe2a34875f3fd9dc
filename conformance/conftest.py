"""Starts the real reportroot (release build) over TLS with a generated tenant, registers
apps, and records every check for the conformance table."""
import json
import os
import socket
import subprocess
import tempfile

import pytest

import edge
import oracle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("REPORTROOT_BIN", os.path.join(ROOT, "target", "release", "reportroot"))
TID = "c0c0c0c0-1234-4abc-8def-000000000001"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json")


def run(*args):
    return subprocess.run([BIN, *args], check=True, capture_output=True, text=True).stdout


class Env:
    pass


@pytest.fixture(scope="session")
def env():
    e = Env()
    e.dir = tempfile.mkdtemp(prefix="rr-conformance-")
    e.data = os.path.join(e.dir, "data")
    e.ndjson = os.path.join(e.dir, "tenant.ndjson")
    run("generate", "--tenant", TID, "--users", "600", "--days", "180", "--seed", "17", "--usage", "--out", e.ndjson)
    with open(e.ndjson) as f:
        first_user = json.loads(f.readline())
    e.edge = os.path.join(e.dir, "edge.ndjson")
    edge.write(e.edge, oracle.Tenant().load(e.ndjson).r, first_user)
    e.files = [e.ndjson, e.edge]
    run("ingest", "--data", e.data, "--tenant", TID, *e.files)
    e.tid = TID
    e.oracle = oracle.Tenant().load(*e.files)
    e.reader = json.loads(run("app", "add", "--data", e.data, "--tenant", TID, "--name", "conformance",
                              "--roles", "Reports.Read.All,ReportSettings.ReadWrite.All", "--json"))
    e.settings_reader = json.loads(run("app", "add", "--data", e.data, "--tenant", TID, "--name", "settings-reader",
                                       "--roles", "Reports.Read.All,ReportSettings.Read.All", "--json"))
    e.writer = json.loads(run("app", "add", "--data", e.data, "--tenant", TID, "--name", "ingest-writer", "--roles", "ReportData.ReadWrite.All", "--json"))
    e.empty_tid = TID[:-1] + "2"
    e.empty = json.loads(run("app", "add", "--data", e.data, "--tenant", e.empty_tid, "--name", "empty-tenant", "--json"))
    e.norole = json.loads(run("app", "add", "--data", e.data, "--tenant", TID, "--name", "no-reports", "--roles", "User.Read.All", "--json"))
    e.removed = json.loads(run("app", "add", "--data", e.data, "--tenant", TID, "--name", "removed", "--json"))
    run("app", "remove", "--data", e.data, "--tenant", TID, "--client-id", e.removed["clientId"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        e.port = s.getsockname()[1]
    e.base = f"https://127.0.0.1:{e.port}"
    e.proc = subprocess.Popen(
        [BIN, "serve", "--listen", f"127.0.0.1:{e.port}", "--data", e.data, "--tls", "self-signed", "--public-url", e.base],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ, RUST_LOG="warn"))
    banner = e.proc.stdout.readline()
    assert banner.startswith("reportroot listening on https://"), banner
    e.ca = os.path.join(e.data, "tls", "ca.pem")
    e.initial_settings = initial_settings(e)
    yield e
    e.proc.terminate()
    e.proc.wait(timeout=30)


def initial_settings(e):
    """/admin/reportSettings as the fresh server answers it ({} while it is not served)."""
    import httpx
    from azure.identity import ClientSecretCredential
    cred = ClientSecretCredential(e.reader["tenantId"], e.reader["clientId"], e.reader["clientSecret"],
                                  authority=e.base, disable_instance_discovery=True, connection_verify=e.ca)
    tok = cred.get_token("https://graph.microsoft.com/.default").token
    with httpx.Client(verify=e.ca) as c:
        r = c.get(e.base + "/v1.0/admin/reportSettings", headers={"Authorization": "Bearer " + tok})
    return r.json() if r.status_code == 200 else {}


_results = []


def pending(reason):
    """A check that did not run because its server feature has not landed (see features.py)."""
    if not any(r.get("pending") == reason for r in _results):
        _results.append({"row": reason, "client": "pending", "ok": None, "pending": reason})


@pytest.fixture(scope="session")
def record():
    def add(row, client, ok=True):
        _results.append({"row": row, "client": client, "ok": bool(ok)})
    yield add
    old = []
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            old = [r for r in json.load(f) if r["client"] == "js graph-client"]
    with open(RESULTS, "w") as f:
        json.dump(old + _results, f, indent=1)


def pytest_collection_modifyitems(items):
    """The test that ingests one more record (test_families.py) runs last, after every module."""
    last = [i for i in items if i.name == "test_skiptoken_from_before_a_data_change"]
    items[:] = [i for i in items if i not in last] + last
