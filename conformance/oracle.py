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
        self.users = {}        # id -> deletedDate (dict order: first `user` record of each id)
        self.names = {}        # id -> (userPrincipalName, displayName), latest record
        self.licenses = {}     # (uid, service) -> (assigned, removed)
        self.products = {}     # (uid, product) -> (assigned, removed)
        self.activations = {}  # (uid, product, device) -> (platform, activated, deactivated, shared)
        self.activity = set()  # (uid, service, date)
        self.explicit = None
        self.max_activity = None
        # The workload facts (conformance/workloads.py computes their reports).
        self.counters = {}       # (uid, workload, date) -> {counter: n}, latest record
        self.mailboxes = {}      # uid -> mailbox record (dict order: first record of each)
        self.mailbox_days = {}   # (uid, date) -> mailboxDay record
        self.sites = {}          # site id -> site record (dict order: first record of each)
        self.site_days = {}      # (site id, date) -> siteDay record
        self.email_clients = {}  # (uid, date) -> (clients, outlookVersion), latest record

    def load(self, *paths):
        for path in paths:
            self._load(path)
        return self

    def _load(self, path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                o = json.loads(line)
                t = o["type"]
                if t == "user":
                    self.users[o["id"]] = o.get("deletedDate")
                    self.names[o["id"]] = (o["userPrincipalName"], o["displayName"])
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
                elif t == "activityCounts":
                    # Any non-zero counter is also activity in that service.
                    counters = [v for k, v in o.items() if k not in ("type", "userId", "workload", "date")]
                    self.counters[(o["userId"], o["workload"], o["date"])] = {
                        k: (v or 0) for k, v in o.items() if k not in ("type", "userId", "workload", "date")}
                    if any(v for v in counters if isinstance(v, int)):
                        d = o["date"]
                        self.activity.add((o["userId"], o["workload"], d))
                        if self.max_activity is None or d > self.max_activity:
                            self.max_activity = d
                elif t == "mailbox":
                    self.mailboxes[o["userId"]] = o
                elif t == "mailboxDay":
                    self.mailbox_days[(o["userId"], o["date"])] = o
                elif t == "site":
                    self.sites[o["id"]] = o
                elif t == "siteDay":
                    self.site_days[(o["siteId"], o["date"])] = o
                elif t == "emailClients":
                    self.email_clients[(o["userId"], o["date"])] = (frozenset(o["clients"]), o.get("outlookVersion"))
                elif t == "refresh":
                    self.explicit = o["date"]
                else:
                    raise ValueError(f"{path}: record type {t!r} is not modelled by the oracle")

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


# ------------------------------------------------------------------ per-user and per-day reports
# Written from the contract of getOffice365ActivationsUserDetail, getOffice365ActiveUserCounts
# and getOffice365ActiveUserDetail (period or date): every "as of R" of the tenant reports,
# with the detail reports' date= putting d in R's place.

AUD_ACT_HEADER = ("Report Refresh Date,User Principal Name,Display Name,Product Type,Last Activated Date,"
                  "Windows,Mac,Windows 10 Mobile,iOS,Android,Activated On Shared Computer")
AUC2_HEADER = ("Report Refresh Date,Office 365,Exchange,OneDrive,SharePoint,Skype For Business,Yammer,Teams,"
               "Report Date,Report Period")
SERVICE_TITLES = ["Exchange", "OneDrive", "SharePoint", "Skype For Business", "Yammer", "Teams"]
AUDETAIL_HEADER = ",".join(
    ["Report Refresh Date", "User Principal Name", "Display Name", "Is Deleted", "Deleted Date"]
    + [f"Has {s} License" for s in SERVICE_TITLES]
    + [f"{s} Last Activity Date" for s in SERVICE_TITLES]
    + [f"{s} License Assign Date" for s in SERVICE_TITLES]
    + ["Assigned Products"])
DETAIL_PLATFORMS = ["windows", "mac", "windows10Mobile", "ios", "android"]  # the CSV's column order
NEW_HEADERS = {"ActivationsUserDetail": AUD_ACT_HEADER, "ActiveUserCounts": AUC2_HEADER,
               "ActiveUserDetail": AUDETAIL_HEADER}


def day(s):
    return datetime.date.fromisoformat(s)


def shift(s, n):
    return (day(s) + datetime.timedelta(days=n)).isoformat()


def bool_text(b):
    return "True" if b else "False"


class DateError(Exception):
    """date= outside R−27 … R: the server must answer 400 InvalidArgument with this message."""


def _exists_on(t, uid, d):
    dd = t.users[uid]
    return dd is None or dd > d


def _held_on(span, d):
    a, rem = span
    return a <= d and (rem is None or rem > d)


def _active_on(act, d):
    _plat, a, de, _sh = act
    return a <= d and (de is None or de > d)


def _by_user(t):
    """uid -> {"lic": {service: span}, "prod": {product: span}, "act": [(product, activation)],
    "last": {service: sorted dates}} (built once per Tenant)."""
    idx = getattr(t, "_by_user_idx", None)
    if idx is not None:
        return idx
    idx = {uid: {"lic": {}, "prod": {}, "act": [], "days": {}} for uid in t.users}
    for (uid, s), span in t.licenses.items():
        idx[uid]["lic"][s] = span
    for (uid, p), span in t.products.items():
        idx[uid]["prod"][p] = span
    for (uid, p, _dev), act in t.activations.items():
        idx[uid]["act"].append((p, act))
    for (uid, s, d) in t.activity:
        idx[uid]["days"].setdefault(s, []).append(d)
    for u in idx.values():
        for s in u["days"]:
            u["days"][s].sort()
    t._by_user_idx = idx
    return idx


def activations_user_detail(t):
    """[(uid, [row values as strings])] in report order, as of R."""
    r = t.r
    if r is None:
        return []
    out = []
    idx = _by_user(t)
    for uid in t.users:
        if not _exists_on(t, uid, r):
            continue
        u = idx[uid]
        held = {p for p, span in u["prod"].items() if _held_on(span, r)}
        active = {}
        for p, act in u["act"]:
            if _active_on(act, r):
                active.setdefault(p, []).append(act)
        upn, name = t.names[uid]
        for p in sorted(held | set(active), key=lambda s: s.encode()):
            acts = active.get(p, [])
            counts = dict.fromkeys(DETAIL_PLATFORMS, 0)
            for plat, _a, _d, _sh in acts:
                counts[plat] += 1
            last = max((a for _pl, a, _d, _sh in acts), default="")
            shared = any(sh for _pl, _a, _d, sh in acts)
            out.append((uid, [r, upn, name, p, last] + [str(counts[x]) for x in DETAIL_PLATFORMS] + [bool_text(shared)]))
    return out


def active_user_counts(t, period):
    """Rows (lists of strings) of getOffice365ActiveUserCounts(period), Report Date descending."""
    r = t.r
    if r is None:
        return []
    n = int(period.lstrip("D"))
    idx = _by_user(t)
    licensed = {s: set() for s in SERVICES}
    for uid in t.users:
        if not _exists_on(t, uid, r):
            continue
        for s, span in idx[uid]["lic"].items():
            if _held_on(span, r):
                licensed[s].add(uid)
    on_day = {}  # (service, date) -> users
    for (uid, s, d) in t.activity:
        on_day.setdefault((s, d), set()).add(uid)
    rows = []
    for k in range(n):
        d = shift(r, -k)
        per = [on_day.get((s, d), set()) & licensed[s] for s in SERVICES]
        rows.append([r, str(len(set().union(*per)))] + [str(len(x)) for x in per] + [d, str(n)])
    return rows


def check_detail_date(t, date):
    r = t.r
    if r is not None and not (shift(r, -27) <= date <= r):
        raise DateError(f"Invalid date value specified: {date}. Only support data for the past 28 days.")


def active_user_detail(t, period=None, date=None):
    """[(uid, [row values as strings])] of getOffice365ActiveUserDetail(period=…) or (date=…).
    Raises DateError for a date= the server must refuse."""
    r = t.r
    if r is None:
        return []  # a tenant with no data: the header alone, whatever the date
    if date is not None:
        check_detail_date(t, date)
        asof, first = date, date
    else:
        if r is None:
            return []
        asof, first = r, shift(r, -(int(period.lstrip("D")) - 1))
    idx = _by_user(t)
    out = []
    for uid, deleted in t.users.items():
        if _exists_on(t, uid, asof):
            is_deleted = False
        elif first <= deleted <= asof:
            is_deleted = True
        else:
            continue
        u = idx[uid]
        has, last, assigned = [], [], []
        for s in SERVICES:
            span = u["lic"].get(s)
            h = span is not None and _held_on(span, asof)
            has.append(bool_text(h))
            assigned.append(span[0] if h else "")
            last.append(max((d for d in u["days"].get(s, []) if d <= asof), default=""))
        products = sorted((p for p, span in u["prod"].items() if _held_on(span, asof)), key=lambda s: s.encode())
        upn, name = t.names[uid]
        out.append((uid, [asof, upn, name, bool_text(is_deleted), deleted if is_deleted else ""]
                    + has + last + assigned + ["+".join(products)]))
    return out


def expected_new(t, report, period=None, date=None):
    """Expected CSV bytes of ActivationsUserDetail, ActiveUserCounts or ActiveUserDetail."""
    if report == "ActivationsUserDetail":
        rows = [row for _uid, row in activations_user_detail(t)]
    elif report == "ActiveUserCounts":
        rows = active_user_counts(t, period)
    else:
        rows = [row for _uid, row in active_user_detail(t, period, date)]
    return render(NEW_HEADERS[report], rows)


def _null(s):
    return s if s != "" else None


def expected_json(t, report, period=None, date=None):
    """Expected `value` entries (JSON) of the beta JSON form of the three reports."""
    if report == "ActiveUserCounts":
        keys = ["reportRefreshDate", "office365", "exchange", "oneDrive", "sharePoint", "skypeForBusiness",
                "yammer", "teams", "reportDate", "reportPeriod"]
        out = []
        for row in active_user_counts(t, period):
            v = dict(zip(keys, row))
            for k in keys[1:8]:
                v[k] = int(v[k])
            out.append(v)
        return out
    if report == "ActiveUserDetail":
        out = []
        for _uid, row in active_user_detail(t, period, date):
            v = {"reportRefreshDate": row[0], "userPrincipalName": row[1], "displayName": row[2],
                 "isDeleted": row[3] == "True", "deletedDate": _null(row[4])}
            for i, s in enumerate(SERVICES):
                cap = s[0].upper() + s[1:]
                v[f"has{cap}License"] = row[5 + i] == "True"
                v[f"{s}LastActivityDate"] = _null(row[11 + i])
                v[f"{s}LicenseAssignDate"] = _null(row[17 + i])
            v["assignedProducts"] = row[23].split("+") if row[23] else []
            out.append(v)
        return out
    out, by = [], {}
    for uid, row in activations_user_detail(t):
        if uid not in by:
            by[uid] = {"reportRefreshDate": row[0], "userPrincipalName": row[1], "displayName": row[2],
                       "userActivationCounts": []}
            out.append(by[uid])
        c = {"productType": row[3], "lastActivatedDate": _null(row[4])}
        for i, plat in enumerate(DETAIL_PLATFORMS):
            c[plat] = int(row[5 + i])
        c["activatedOnSharedComputer"] = row[10] == "True"
        by[uid]["userActivationCounts"].append(c)
    return out


def detail_uids(t, report, period=None, date=None):
    """User ids in the order of the report's entries (one per JSON entry)."""
    rows = activations_user_detail(t) if report == "ActivationsUserDetail" else active_user_detail(t, period, date)
    seen = []
    for uid, _row in rows:
        if not seen or seen[-1] != uid:
            seen.append(uid)
    return seen
