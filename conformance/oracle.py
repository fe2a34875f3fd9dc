"""An independent oracle: reads ingest NDJSON and computes every report's expected CSV by its
own code (plain Python sets and dicts, following the README's semantics), never calling
reportroot. Handles both activity forms and later-record-replaces-earlier keys."""
import datetime
import json

SERVICES = ["exchange", "oneDrive", "sharePoint", "skypeForBusiness", "yammer", "teams"]
PLATFORMS = ["windows", "mac", "android", "ios", "windows10Mobile"]
BOM = b"\xef\xbb\xbf"

AUC_HEADER = "Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation"
AC_HEADER = "Report Refresh Date,Product Type,Windows,Mac,Android,iOS,Windows 10 Mobile"
SUC_HEADER = ("Report Refresh Date,Exchange Active,Exchange Inactive,OneDrive Active,OneDrive Inactive,"
              "SharePoint Active,SharePoint Inactive,Skype For Business Active,Skype For Business Inactive,"
              "Yammer Active,Yammer Inactive,Teams Active,Teams Inactive,Office 365 Active,Office 365 Inactive,Report Period")
LEGACY_HEADER = "Report Refresh Date,Product Type,Assigned,Activated"


class Tenant:
    def __init__(self):
        self.users = {}        # id -> deletedDate
        self.licenses = {}     # (uid, service) -> (assigned, removed)
        self.products = {}     # (uid, product) -> (assigned, removed)
        self.activations = {}  # (uid, product, device) -> (platform, activated, deactivated, shared)
        self.activity = set()  # (uid, service, date)
        self.explicit = None
        self.max_activity = None

    def load(self, path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                o = json.loads(line)
                t = o["type"]
                if t == "user":
                    self.users[o["id"]] = o.get("deletedDate")
                elif t == "serviceLicense":
                    self.licenses[(o["userId"], o["service"])] = (o["assignedDate"], o.get("removedDate"))
                elif t == "productAssignment":
                    self.products[(o["userId"], o["productType"])] = (o["assignedDate"], o.get("removedDate"))
                elif t == "activation":
                    self.activations[(o["userId"], o["productType"], o["deviceId"])] = (
                        o["platform"], o["activatedDate"], o.get("deactivatedDate"), o["sharedComputer"])
                elif t == "activity":
                    dates = o["dates"] if "dates" in o else [o["date"]]
                    for d in dates:
                        self.activity.add((o["userId"], o["service"], d))
                        if self.max_activity is None or d > self.max_activity:
                            self.max_activity = d
                elif t == "refresh":
                    self.explicit = o["date"]
        return self

    @property
    def r(self):
        return self.explicit or self.max_activity

    def exists(self, uid):
        d = self.users.get(uid, "missing")
        return d != "missing" and (d is None or d > self.r)

    def held(self, span):
        a, rem = span
        return a <= self.r and (rem is None or rem > self.r)

    def activation_rows(self):
        r = self.r
        holders, activated, shared = {}, {}, {}
        counts = {}
        for (uid, p), span in self.products.items():
            if self.exists(uid) and self.held(span):
                holders.setdefault(p, set()).add(uid)
        for (uid, p, _dev), (plat, a, d, sh) in self.activations.items():
            if not self.exists(uid) or not (a <= r and (d is None or d > r)):
                continue
            counts.setdefault(p, dict.fromkeys(PLATFORMS, 0))[plat] += 1
            activated.setdefault(p, set()).add(uid)
            if sh:
                shared.setdefault(p, set()).add(uid)
        names = sorted(set(holders) | set(counts), key=lambda s: s.encode())
        return names, holders, activated, shared, counts


def csv_field(s):
    if any(c in s for c in ',"\r\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def render(header, rows):
    lines = [header] + [",".join(csv_field(str(x)) for x in row) for row in rows]
    return BOM + "".join(l + "\r\n" for l in lines).encode()


def expected(t, report, period=None, legacy=False):
    """Expected CSV bytes for `report` in ActivationsUserCounts, ActivationCounts, ServicesUserCounts."""
    r = t.r
    if r is None:
        header = {"ActivationsUserCounts": LEGACY_HEADER if legacy else AUC_HEADER,
                  "ActivationCounts": AC_HEADER, "ServicesUserCounts": SUC_HEADER}[report]
        return render(header, [])
    if report in ("ActivationsUserCounts", "ActivationCounts"):
        names, holders, activated, shared, counts = t.activation_rows()
        rows = []
        for p in names:
            h = holders.get(p, set())
            if report == "ActivationCounts":
                c = counts.get(p, dict.fromkeys(PLATFORMS, 0))
                rows.append([r, p] + [c[x] for x in PLATFORMS])
            elif legacy:
                rows.append([r, p, len(h), len(h & activated.get(p, set()))])
            else:
                rows.append([r, p, len(h), len(h & activated.get(p, set())), len(h & shared.get(p, set()))])
        header = AC_HEADER if report == "ActivationCounts" else (LEGACY_HEADER if legacy else AUC_HEADER)
        return render(header, rows)
    n = int(period.lstrip("D"))
    start = (datetime.date.fromisoformat(r) - datetime.timedelta(days=n - 1)).isoformat()
    licensed = {s: set() for s in SERVICES}
    for (uid, s), span in t.licenses.items():
        if t.exists(uid) and t.held(span):
            licensed[s].add(uid)
    active = {s: set() for s in SERVICES}
    for (uid, s, d) in t.activity:
        if start <= d <= r and uid in licensed[s]:
            active[s].add(uid)
    row = [r]
    for s in SERVICES:
        row += [len(active[s]), len(licensed[s]) - len(active[s])]
    all_l = set().union(*licensed.values())
    all_a = set().union(*active.values())
    row += [len(all_a), len(all_l) - len(all_a), n]
    return render(SUC_HEADER, [row])
