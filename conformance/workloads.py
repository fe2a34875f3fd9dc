"""The independent oracle of the 27 Exchange, OneDrive and SharePoint report functions, written
from the README's ingest contract ("The families' other reports ...": workload activity,
mailbox usage, OneDrive and SharePoint usage, email app usage) and the CSV headers and beta
JSON names of shared/graph-reports-catalogue.md, never from reportroot's code. Plain Python
over the records oracle.Tenant loaded; the per-user listing reuses oracle.active_user_detail
(the contract defines these lists as "the users ActiveUserDetail lists")."""
import oracle
from oracle import DateError, check_detail_date, render, shift

# ------------------------------------------------------------------ the catalogue: CSV header, beta JSON name, type
# Types: D date (empty / null), I whole number, B True/False (boolean), T text, P Report Period
# (a number in CSV, a string in JSON), L `+`-joined list (a JSON array).

REFRESH = ("Report Refresh Date", "reportRefreshDate", "D")
UPN = ("User Principal Name", "userPrincipalName", "T")
NAME = ("Display Name", "displayName", "T")
IS_DELETED = ("Is Deleted", "isDeleted", "B")
DELETED = ("Deleted Date", "deletedDate", "D")
LAST = ("Last Activity Date", "lastActivityDate", "D")
PRODUCTS = ("Assigned Products", "assignedProducts", "L")
RDATE = ("Report Date", "reportDate", "D")
RPERIOD = ("Report Period", "reportPeriod", "P")
SITE_TYPE = ("Site Type", "siteType", "T")
STORAGE = ("Storage Used (Byte)", "storageUsedInBytes", "I")

EMAIL_COUNTERS = ["send", "receive", "read", "meetingCreated", "meetingInteracted"]
FILE_COUNTERS = ["viewedOrEdited", "synced", "sharedInternally", "sharedExternally"]
APPS = ["mailForMac", "outlookForMac", "outlookForWindows", "outlookForMobile", "otherForMobile",
        "outlookForWeb", "pop3App", "imap4App", "smtpApp"]
APP_TITLES = ["Mail For Mac", "Outlook For Mac", "Outlook For Windows", "Outlook For Mobile", "Other For Mobile",
              "Outlook For Web", "POP3 App", "IMAP4 App", "SMTP App"]

EMAIL_COUNTS_COLS = [REFRESH, ("Send", "send", "I"), ("Receive", "receive", "I"), ("Read", "read", "I"),
                     ("Meeting Created", "meetingCreated", "I"), ("Meeting Interacted", "meetingInteracted", "I"),
                     RDATE, RPERIOD]
FILE_COUNTS_COLS = [REFRESH, ("Viewed Or Edited", "viewedOrEdited", "I"), ("Synced", "synced", "I"),
                    ("Shared Internally", "sharedInternally", "I"), ("Shared Externally", "sharedExternally", "I"),
                    RDATE, RPERIOD]
FILE_DETAIL_COUNTS = [("Viewed Or Edited File Count", "viewedOrEditedFileCount", "I"),
                      ("Synced File Count", "syncedFileCount", "I"),
                      ("Shared Internally File Count", "sharedInternallyFileCount", "I"),
                      ("Shared Externally File Count", "sharedExternallyFileCount", "I")]
SITE_TOTALS_COLS = [REFRESH, SITE_TYPE, ("Total", "total", "I"), ("Active", "active", "I"), RDATE, RPERIOD]
SITE_STORAGE_COLS = [REFRESH, SITE_TYPE, STORAGE, RDATE, RPERIOD]

COLUMNS = {
    "getEmailActivityCounts": EMAIL_COUNTS_COLS,
    "getEmailActivityUserCounts": EMAIL_COUNTS_COLS,
    "getEmailActivityUserDetail": [
        REFRESH, UPN, NAME, IS_DELETED, DELETED, LAST, ("Send Count", "sendCount", "I"),
        ("Receive Count", "receiveCount", "I"), ("Read Count", "readCount", "I"),
        ("Meeting Created Count", "meetingCreatedCount", "I"),
        ("Meeting Interacted Count", "meetingInteractedCount", "I"), PRODUCTS, RPERIOD],
    "getEmailAppUsageAppsUserCounts": [REFRESH] + [(t, a, "I") for t, a in zip(APP_TITLES, APPS)] + [RPERIOD],
    "getEmailAppUsageUserCounts": [REFRESH] + [(t, a, "I") for t, a in zip(APP_TITLES, APPS)] + [RDATE, RPERIOD],
    "getEmailAppUsageUserDetail": [REFRESH, UPN, NAME, IS_DELETED, DELETED, LAST]
    + [(t, a, "T") for t, a in zip(APP_TITLES, APPS)] + [RPERIOD],
    "getEmailAppUsageVersionsUserCounts": [
        REFRESH, ("Outlook 2016", "outlook2016", "I"), ("Outlook 2013", "outlook2013", "I"),
        ("Outlook 2010", "outlook2010", "I"), ("Outlook 2007", "outlook2007", "I"),
        ("Undetermined", "undetermined", "I"), RPERIOD, ("Outlook M365", "outlookM365", "I"),
        ("Outlook 2019", "outlook2019", "I")],
    "getMailboxUsageDetail": [
        REFRESH, UPN, NAME, IS_DELETED, DELETED, ("Created Date", "createdDate", "D"), LAST,
        ("Item Count", "itemCount", "I"), STORAGE, ("Issue Warning Quota (Byte)", "issueWarningQuotaInBytes", "I"),
        ("Prohibit Send Quota (Byte)", "prohibitSendQuotaInBytes", "I"),
        ("Prohibit Send/Receive Quota (Byte)", "prohibitSendReceiveQuotaInBytes", "I"),
        ("Deleted Item Count", "deletedItemCount", "I"), ("Deleted Item Size (Byte)", "deletedItemSizeInBytes", "I"),
        ("Deleted Item Quota (Byte)", "deletedItemQuota", "I"), ("Has Archive", "hasArchive", "B"), RPERIOD],
    "getMailboxUsageMailboxCounts": [REFRESH, ("Total", "total", "I"), ("Active", "active", "I"), RDATE, RPERIOD],
    "getMailboxUsageQuotaStatusMailboxCounts": [
        REFRESH, ("Under Limit", "underLimit", "I"), ("Warning Issued", "warningIssued", "I"),
        ("Send Prohibited", "sendProhibited", "I"), ("Send/Receive Prohibited", "sendReceiveProhibited", "I"),
        ("Indeterminate", "indeterminate", "I"), RDATE, RPERIOD],
    "getMailboxUsageStorage": [REFRESH, STORAGE, RDATE, RPERIOD],
    "getOneDriveActivityFileCounts": FILE_COUNTS_COLS,
    "getOneDriveActivityUserCounts": FILE_COUNTS_COLS,
    "getOneDriveActivityUserDetail": [REFRESH, UPN, IS_DELETED, DELETED, LAST] + FILE_DETAIL_COUNTS + [PRODUCTS, RPERIOD],
    "getOneDriveUsageAccountCounts": SITE_TOTALS_COLS,
    "getOneDriveUsageAccountDetail": [
        REFRESH, ("Site URL", "siteUrl", "T"), ("Owner Display Name", "ownerDisplayName", "T"), IS_DELETED, LAST,
        ("File Count", "fileCount", "I"), ("Active File Count", "activeFileCount", "I"), STORAGE,
        ("Storage Allocated (Byte)", "storageAllocatedInBytes", "I"),
        ("Owner Principal Name", "ownerPrincipalName", "T"), RPERIOD],
    "getOneDriveUsageFileCounts": SITE_TOTALS_COLS,
    "getOneDriveUsageStorage": SITE_STORAGE_COLS,
    "getSharePointActivityFileCounts": FILE_COUNTS_COLS,
    "getSharePointActivityPages": [REFRESH, ("Visited Page Count", "visitedPageCount", "I"), RDATE, RPERIOD],
    "getSharePointActivityUserCounts": [REFRESH, ("Visited Page", "visitedPage", "I")] + FILE_COUNTS_COLS[1:],
    "getSharePointActivityUserDetail": [REFRESH, UPN, IS_DELETED, DELETED, LAST] + FILE_DETAIL_COUNTS
    + [("Visited Page Count", "visitedPageCount", "I"), PRODUCTS, RPERIOD],
    "getSharePointSiteUsageDetail": [
        REFRESH, ("Site Id", "siteId", "T"), ("Site URL", "siteUrl", "T"),
        ("Owner Display Name", "ownerDisplayName", "T"), IS_DELETED, LAST, ("File Count", "fileCount", "I"),
        ("Active File Count", "activeFileCount", "I"), ("Page View Count", "pageViewCount", "I"),
        ("Visited Page Count", "visitedPageCount", "I"), STORAGE,
        ("Storage Allocated (Byte)", "storageAllocatedInBytes", "I"), ("Root Web Template", "rootWebTemplate", "T"),
        ("Owner Principal Name", "ownerPrincipalName", "T"), RPERIOD],
    "getSharePointSiteUsageFileCounts": SITE_TOTALS_COLS,
    "getSharePointSiteUsagePages": [REFRESH, SITE_TYPE, ("Page View Count", "pageViewCount", "I"), RDATE, RPERIOD],
    "getSharePointSiteUsageSiteCounts": SITE_TOTALS_COLS,
    "getSharePointSiteUsageStorage": SITE_STORAGE_COLS,
}

# The catalogue's headers and beta JSON property lists, verbatim (COLUMNS must agree with them).
CATALOGUE = {
    "getEmailActivityCounts": ("Report Refresh Date,Send,Receive,Read,Meeting Created,Meeting Interacted,Report Date,Report Period",
                               "reportRefreshDate,send,receive,read,meetingCreated,meetingInteracted,reportDate,reportPeriod"),
    "getEmailActivityUserCounts": ("Report Refresh Date,Send,Receive,Read,Meeting Created,Meeting Interacted,Report Date,Report Period",
                                   "reportRefreshDate,send,receive,read,meetingCreated,meetingInteracted,reportDate,reportPeriod"),
    "getEmailActivityUserDetail": ("Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Last Activity Date,Send Count,Receive Count,Read Count,Meeting Created Count,Meeting Interacted Count,Assigned Products,Report Period",
                                   "reportRefreshDate,userPrincipalName,displayName,isDeleted,deletedDate,lastActivityDate,sendCount,receiveCount,readCount,assignedProducts,meetingCreatedCount,meetingInteractedCount,reportPeriod"),
    "getEmailAppUsageAppsUserCounts": ("Report Refresh Date,Mail For Mac,Outlook For Mac,Outlook For Windows,Outlook For Mobile,Other For Mobile,Outlook For Web,POP3 App,IMAP4 App,SMTP App,Report Period",
                                       "reportRefreshDate,mailForMac,outlookForMac,outlookForWindows,outlookForMobile,otherForMobile,outlookForWeb,pop3App,imap4App,smtpApp,reportPeriod"),
    "getEmailAppUsageUserCounts": ("Report Refresh Date,Mail For Mac,Outlook For Mac,Outlook For Windows,Outlook For Mobile,Other For Mobile,Outlook For Web,POP3 App,IMAP4 App,SMTP App,Report Date,Report Period",
                                   "reportRefreshDate,mailForMac,outlookForMac,outlookForWindows,outlookForMobile,otherForMobile,outlookForWeb,pop3App,imap4App,smtpApp,reportDate,reportPeriod"),
    "getEmailAppUsageUserDetail": ("Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Last Activity Date,Mail For Mac,Outlook For Mac,Outlook For Windows,Outlook For Mobile,Other For Mobile,Outlook For Web,POP3 App,IMAP4 App,SMTP App,Report Period",
                                   "reportRefreshDate,userPrincipalName,displayName,isDeleted,deletedDate,lastActivityDate,mailForMac,outlookForMac,outlookForWindows,outlookForMobile,otherForMobile,outlookForWeb,pop3App,imap4App,smtpApp,reportPeriod"),
    "getEmailAppUsageVersionsUserCounts": ("Report Refresh Date,Outlook 2016,Outlook 2013,Outlook 2010,Outlook 2007,Undetermined,Report Period,Outlook M365,Outlook 2019",
                                           "reportRefreshDate,outlook2016,outlook2013,outlook2010,outlook2007,undetermined,reportPeriod,outlookM365,outlook2019"),
    "getMailboxUsageDetail": ("Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Created Date,Last Activity Date,Item Count,Storage Used (Byte),Issue Warning Quota (Byte),Prohibit Send Quota (Byte),Prohibit Send/Receive Quota (Byte),Deleted Item Count,Deleted Item Size (Byte),Deleted Item Quota (Byte),Has Archive,Report Period",
                              "reportRefreshDate,userPrincipalName,displayName,isDeleted,deletedDate,createdDate,lastActivityDate,itemCount,storageUsedInBytes,deletedItemCount,deletedItemSizeInBytes,deletedItemQuota,hasArchive,issueWarningQuotaInBytes,prohibitSendQuotaInBytes,prohibitSendReceiveQuotaInBytes,reportPeriod"),
    "getMailboxUsageMailboxCounts": ("Report Refresh Date,Total,Active,Report Date,Report Period",
                                     "reportRefreshDate,total,active,reportDate,reportPeriod"),
    "getMailboxUsageQuotaStatusMailboxCounts": ("Report Refresh Date,Under Limit,Warning Issued,Send Prohibited,Send/Receive Prohibited,Indeterminate,Report Date,Report Period",
                                                "reportRefreshDate,underLimit,warningIssued,sendProhibited,sendReceiveProhibited,indeterminate,reportDate,reportPeriod"),
    "getMailboxUsageStorage": ("Report Refresh Date,Storage Used (Byte),Report Date,Report Period",
                               "reportRefreshDate,storageUsedInBytes,reportDate,reportPeriod"),
    "getOneDriveActivityFileCounts": ("Report Refresh Date,Viewed Or Edited,Synced,Shared Internally,Shared Externally,Report Date,Report Period",
                                      "reportRefreshDate,viewedOrEdited,synced,sharedInternally,sharedExternally,reportDate,reportPeriod"),
    "getOneDriveActivityUserCounts": ("Report Refresh Date,Viewed Or Edited,Synced,Shared Internally,Shared Externally,Report Date,Report Period",
                                      "reportRefreshDate,viewedOrEdited,synced,sharedInternally,sharedExternally,reportDate,reportPeriod"),
    "getOneDriveActivityUserDetail": ("Report Refresh Date,User Principal Name,Is Deleted,Deleted Date,Last Activity Date,Viewed Or Edited File Count,Synced File Count,Shared Internally File Count,Shared Externally File Count,Assigned Products,Report Period",
                                      "reportRefreshDate,userPrincipalName,isDeleted,deletedDate,lastActivityDate,viewedOrEditedFileCount,syncedFileCount,sharedInternallyFileCount,sharedExternallyFileCount,assignedProducts,reportPeriod"),
    "getOneDriveUsageAccountCounts": ("Report Refresh Date,Site Type,Total,Active,Report Date,Report Period",
                                      "reportRefreshDate,siteType,total,active,reportDate,reportPeriod"),
    "getOneDriveUsageAccountDetail": ("Report Refresh Date,Site URL,Owner Display Name,Is Deleted,Last Activity Date,File Count,Active File Count,Storage Used (Byte),Storage Allocated (Byte),Owner Principal Name,Report Period",
                                      "reportRefreshDate,siteUrl,ownerDisplayName,ownerPrincipalName,isDeleted,lastActivityDate,fileCount,activeFileCount,storageUsedInBytes,storageAllocatedInBytes,reportPeriod"),
    "getOneDriveUsageFileCounts": ("Report Refresh Date,Site Type,Total,Active,Report Date,Report Period",
                                   "reportRefreshDate,siteType,total,active,reportDate,reportPeriod"),
    "getOneDriveUsageStorage": ("Report Refresh Date,Site Type,Storage Used (Byte),Report Date,Report Period",
                                "reportRefreshDate,siteType,storageUsedInBytes,reportDate,reportPeriod"),
    "getSharePointActivityFileCounts": ("Report Refresh Date,Viewed Or Edited,Synced,Shared Internally,Shared Externally,Report Date,Report Period",
                                        "reportRefreshDate,viewedOrEdited,synced,sharedInternally,sharedExternally,reportDate,reportPeriod"),
    "getSharePointActivityPages": ("Report Refresh Date,Visited Page Count,Report Date,Report Period",
                                   "reportRefreshDate,visitedPageCount,reportDate,reportPeriod"),
    "getSharePointActivityUserCounts": ("Report Refresh Date,Visited Page,Viewed Or Edited,Synced,Shared Internally,Shared Externally,Report Date,Report Period",
                                        "reportRefreshDate,visitedPage,viewedOrEdited,synced,sharedInternally,sharedExternally,reportDate,reportPeriod"),
    "getSharePointActivityUserDetail": ("Report Refresh Date,User Principal Name,Is Deleted,Deleted Date,Last Activity Date,Viewed Or Edited File Count,Synced File Count,Shared Internally File Count,Shared Externally File Count,Visited Page Count,Assigned Products,Report Period",
                                        "reportRefreshDate,userPrincipalName,isDeleted,deletedDate,lastActivityDate,viewedOrEditedFileCount,syncedFileCount,sharedInternallyFileCount,sharedExternallyFileCount,visitedPageCount,assignedProducts,reportPeriod"),
    "getSharePointSiteUsageDetail": ("Report Refresh Date,Site Id,Site URL,Owner Display Name,Is Deleted,Last Activity Date,File Count,Active File Count,Page View Count,Visited Page Count,Storage Used (Byte),Storage Allocated (Byte),Root Web Template,Owner Principal Name,Report Period",
                                     "reportRefreshDate,siteId,siteUrl,ownerDisplayName,ownerPrincipalName,isDeleted,lastActivityDate,siteSensitivityLabelId,externalSharing,unmanagedDevicePolicy,geoLocation,fileCount,activeFileCount,pageViewCount,visitedPageCount,anonymousLinkCount,companyLinkCount,secureLinkForGuestCount,secureLinkForMemberCount,storageUsedInBytes,storageAllocatedInBytes,rootWebTemplate,reportPeriod"),
    "getSharePointSiteUsageFileCounts": ("Report Refresh Date,Site Type,Total,Active,Report Date,Report Period",
                                         "reportRefreshDate,siteType,total,active,reportDate,reportPeriod"),
    "getSharePointSiteUsagePages": ("Report Refresh Date,Site Type,Page View Count,Report Date,Report Period",
                                    "reportRefreshDate,siteType,pageViewCount,reportDate,reportPeriod"),
    "getSharePointSiteUsageSiteCounts": ("Report Refresh Date,Site Type,Total,Active,Report Date,Report Period",
                                         "reportRefreshDate,siteType,total,active,reportDate,reportPeriod"),
    "getSharePointSiteUsageStorage": ("Report Refresh Date,Site Type,Storage Used (Byte),Report Date,Report Period",
                                      "reportRefreshDate,siteType,storageUsedInBytes,reportDate,reportPeriod"),
}

FUNCTIONS = sorted(COLUMNS)
# Detail reports: one entity per row (a user, a mailbox, a site); `date=` where the catalogue allows it.
DETAIL = ["getEmailActivityUserDetail", "getEmailAppUsageUserDetail", "getMailboxUsageDetail",
          "getOneDriveActivityUserDetail", "getOneDriveUsageAccountDetail", "getSharePointActivityUserDetail",
          "getSharePointSiteUsageDetail"]
WITH_DATE = [f for f in DETAIL if f != "getMailboxUsageDetail"]
# The name columns concealed (a 32-hex digest of the user or owner id) while displayConcealedNames is on.
NAME_COLUMNS = {"User Principal Name", "Display Name", "Owner Display Name", "Owner Principal Name"}


def header(f):
    return ",".join(c[0] for c in COLUMNS[f])


# ------------------------------------------------------------------ shared helpers

def window(t, period=None, date=None):
    """(as-of day, first day, Report Period) of a period= or date= call."""
    if date is not None:
        check_detail_date(t, date)
        return date, date, 1
    n = int(period.upper().lstrip("D"))
    return t.r, shift(t.r, -(n - 1)), n


def days_desc(t, period):
    n = int(period.upper().lstrip("D"))
    return [shift(t.r, -k) for k in range(n)], n


def _idx(t):
    """Per-user and per-site indexes of the workload facts, built once per Tenant."""
    idx = getattr(t, "_workload_idx", None)
    if idx is not None:
        return idx
    idx = {"counters": {}, "by_day": {}, "mbx_days": {}, "site_days": {}, "clients": {}, "clients_by_day": {}}
    for (uid, wl, d), c in t.counters.items():
        idx["counters"].setdefault((uid, wl), []).append((d, c))
        idx["by_day"].setdefault((wl, d), []).append((uid, c))
    for (uid, d), st in t.mailbox_days.items():
        idx["mbx_days"].setdefault(uid, []).append((d, st))
    for (sid, d), st in t.site_days.items():
        idx["site_days"].setdefault(sid, []).append((d, st))
    for v in list(idx["mbx_days"].values()) + list(idx["site_days"].values()):
        v.sort(key=lambda x: x[0])
    for (uid, d), (clients, version) in t.email_clients.items():
        idx["clients"].setdefault(uid, []).append((d, clients, version))
        idx["clients_by_day"].setdefault(d, []).append((uid, clients, version))
    t._workload_idx = idx
    return idx


def latest(states, d):
    """The latest (date, state) of a date-sorted list dated on or before d, or None."""
    lo, hi = 0, len(states)
    while lo < hi:
        mid = (lo + hi) // 2
        if states[mid][0] <= d:
            lo = mid + 1
        else:
            hi = mid
    return states[lo - 1] if lo else None


def exists_on_r(t, uid):
    return uid in t.users and oracle._exists_on(t, uid, t.r)


# ------------------------------------------------------------------ workload activity (activityCounts)

WORKLOAD = {"Email": "exchange", "OneDrive": "oneDrive", "SharePoint": "sharePoint"}


def activity_daily(t, f, period):
    """getEmailActivityCounts/UserCounts, getOneDrive/SharePointActivityFileCounts/UserCounts,
    getSharePointActivityPages: a row per day, Report Date descending, over users existing on R."""
    ds, n = days_desc(t, period)
    idx = _idx(t)
    if f.startswith("getEmail"):
        wl, counters = "exchange", EMAIL_COUNTERS
    elif f.startswith("getOneDrive"):
        wl, counters = "oneDrive", FILE_COUNTERS
    elif f == "getSharePointActivityPages":
        wl, counters = "sharePoint", ["visitedPages"]
    elif f == "getSharePointActivityUserCounts":
        wl, counters = "sharePoint", ["visitedPages"] + FILE_COUNTERS
    else:
        wl, counters = "sharePoint", FILE_COUNTERS
    users = f.endswith("UserCounts")
    rows = []
    for d in ds:
        sums = [0] * len(counters)
        for uid, c in idx["by_day"].get((wl, d), []):
            if not exists_on_r(t, uid):
                continue
            for i, k in enumerate(counters):
                v = c.get(k, 0)
                sums[i] += (1 if v else 0) if users else v
        rows.append([t.r] + sums + [d, n])
    return rows


def activity_detail(t, f, period=None, date=None):
    """[(uid, row)] of getEmailActivityUserDetail, getOneDriveActivityUserDetail,
    getSharePointActivityUserDetail."""
    asof, first, n = window(t, period, date)
    svc = {"getEmailActivityUserDetail": "exchange", "getOneDriveActivityUserDetail": "oneDrive",
           "getSharePointActivityUserDetail": "sharePoint"}[f]
    si = oracle.SERVICES.index(svc)
    counters = {"exchange": EMAIL_COUNTERS, "oneDrive": FILE_COUNTERS, "sharePoint": FILE_COUNTERS + ["visitedPages"]}[svc]
    by_user = oracle._by_user(t)
    idx = _idx(t)
    out = []
    for uid, aud in oracle.active_user_detail(t, period, date):
        licensed = aud[5 + si] == "True"
        active = any(first <= d <= asof for d in by_user[uid]["days"].get(svc, []))
        if not (licensed or active):
            continue
        sums = [0] * len(counters)
        for d, c in idx["counters"].get((uid, svc), []):
            if first <= d <= asof:
                for i, k in enumerate(counters):
                    sums[i] += c.get(k, 0)
        upn, name = t.names[uid]
        head = [asof, upn, name] if svc == "exchange" else [asof, upn]
        out.append((uid, head + [aud[3], aud[4], aud[11 + si]] + sums + [aud[23], n]))
    return out


# ------------------------------------------------------------------ mailbox usage (mailbox, mailboxDay)

def _mailbox_gone(t, uid, m):
    """The first day the mailbox no longer exists (its or its user's deletion), or None."""
    ds = [x for x in (m.get("deletedDate"), t.users.get(uid)) if x is not None]
    return min(ds) if ds else None


def _mailbox_exists(t, uid, m, d):
    gone = _mailbox_gone(t, uid, m)
    return m["createdDate"] <= d and (gone is None or gone > d)


def quota_status(m, st):
    q = [m.get("issueWarningQuota") or 0, m.get("prohibitSendQuota") or 0, m.get("prohibitSendReceiveQuota") or 0,
         m.get("deletedItemQuota") or 0]
    if st is None or not any(q):
        return "indeterminate"
    used = st.get("storageUsed") or 0
    if used >= q[2]:
        return "sendReceiveProhibited"
    if used >= q[1]:
        return "sendProhibited"
    if used >= q[0]:
        return "warningIssued"
    return "underLimit"


def mailbox_daily(t, f, period):
    ds, n = days_desc(t, period)
    idx = _idx(t)
    rows = []
    for d in ds:
        total = active = storage = 0
        status = dict.fromkeys(["underLimit", "warningIssued", "sendProhibited", "sendReceiveProhibited", "indeterminate"], 0)
        for uid, m in t.mailboxes.items():
            if not _mailbox_exists(t, uid, m, d):
                continue
            total += 1
            active += (uid, "exchange", d) in t.activity
            st = latest(idx["mbx_days"].get(uid, []), d)
            st = st[1] if st else None
            status[quota_status(m, st)] += 1
            storage += (st.get("storageUsed") or 0) if st else 0
        if f == "getMailboxUsageMailboxCounts":
            rows.append([t.r, total, active, d, n])
        elif f == "getMailboxUsageStorage":
            rows.append([t.r, storage, d, n])
        else:
            rows.append([t.r] + list(status.values()) + [d, n])
    return rows


def mailbox_detail(t, period):
    asof, first, n = window(t, period)
    by_user = oracle._by_user(t)
    idx = _idx(t)
    out = []
    # A mailbox is its user's: the users' first-ingested order, as every per-user report (the
    # contract gives no other order).
    for uid in (u for u in t.users if u in t.mailboxes):
        m = t.mailboxes[uid]
        if _mailbox_exists(t, uid, m, asof):
            deleted, when = False, ""
        else:
            gone = _mailbox_gone(t, uid, m)
            if gone is None or not (first <= gone <= asof) or not m["createdDate"] < gone:
                continue
            deleted, when = True, gone
        st = latest(idx["mbx_days"].get(uid, []), asof)
        st = st[1] if st else {}
        last = max((d for d in by_user[uid]["days"].get("exchange", []) if d <= asof), default="")
        upn, name = t.names[uid]
        out.append((uid, [asof, upn, name, oracle.bool_text(deleted), when, m["createdDate"], last,
                          st.get("itemCount") or 0, st.get("storageUsed") or 0, m.get("issueWarningQuota") or 0,
                          m.get("prohibitSendQuota") or 0, m.get("prohibitSendReceiveQuota") or 0,
                          st.get("deletedItemCount") or 0, st.get("deletedItemSize") or 0,
                          m.get("deletedItemQuota") or 0, oracle.bool_text(bool(m.get("hasArchive"))), n]))
    return out


# ------------------------------------------------------------------ OneDrive and SharePoint usage (site, siteDay)

def _site_exists(s, d):
    return s["createdDate"] <= d and (s.get("deletedDate") is None or s["deletedDate"] > d)


def _site_active(s, st):
    if (st.get("activeFileCount") or 0) > 0:
        return True
    return s["kind"] == "sharePoint" and (st.get("pageViewCount") or 0) > 0


def site_daily(t, f, period):
    ds, n = days_desc(t, period)
    kind = "oneDrive" if f.startswith("getOneDrive") else "sharePoint"
    idx = _idx(t)
    rows = []
    for d in ds:
        sites = files = active_files = active = storage = views = 0
        for sid, s in t.sites.items():
            if s["kind"] != kind or not _site_exists(s, d):
                continue
            states = idx["site_days"].get(sid, [])
            cur = latest(states, d)
            today = t.site_days.get((sid, d))
            sites += 1
            if cur:
                files += cur[1].get("fileCount") or 0
                storage += cur[1].get("storageUsed") or 0
            if today:
                active_files += today.get("activeFileCount") or 0
                views += today.get("pageViewCount") or 0
                active += _site_active(s, today)
        if f.endswith("AccountCounts") or f.endswith("SiteCounts"):
            rows.append([t.r, "All", sites, active, d, n])
        elif f.endswith("FileCounts"):
            rows.append([t.r, "All", files, active_files, d, n])
        elif f.endswith("Storage"):
            rows.append([t.r, "All", storage, d, n])
        else:
            rows.append([t.r, "All", views, d, n])
    return rows


def site_detail(t, f, period=None, date=None):
    """[(owner uid or None, row)] of getOneDriveUsageAccountDetail, getSharePointSiteUsageDetail."""
    asof, first, n = window(t, period, date)
    kind = "oneDrive" if f.startswith("getOneDrive") else "sharePoint"
    idx = _idx(t)
    out = []
    for sid, s in t.sites.items():
        if s["kind"] != kind:
            continue
        if _site_exists(s, asof):
            deleted = False
        else:
            dd = s.get("deletedDate")
            if dd is None or not (first <= dd <= asof) or not s["createdDate"] < dd:
                continue
            deleted = True
        states = idx["site_days"].get(sid, [])
        cur = latest(states, asof)
        cur = cur[1] if cur else {}
        in_window = [st for d, st in states if first <= d <= asof]
        last = max((d for d, st in states if d <= asof and _site_active(s, st)), default="")
        owner = s.get("ownerId")
        upn, name = t.names[owner] if owner else ("", "")
        sums = lambda k: sum(st.get(k) or 0 for st in in_window)
        if kind == "oneDrive":
            row = [asof, s["url"], name, oracle.bool_text(deleted), last, cur.get("fileCount") or 0,
                   sums("activeFileCount"), cur.get("storageUsed") or 0, cur.get("storageAllocated") or 0, upn, n]
        else:
            row = [asof, sid, s["url"], name, oracle.bool_text(deleted), last, cur.get("fileCount") or 0,
                   sums("activeFileCount"), sums("pageViewCount"), sums("visitedPageCount"),
                   cur.get("storageUsed") or 0, cur.get("storageAllocated") or 0, s.get("rootWebTemplate") or "", upn, n]
        out.append((owner, row))
    return out


# ------------------------------------------------------------------ email app usage (emailClients)

VERSIONS = ["2016", "2013", "2010", "2007", "undetermined", None, "M365", "2019"]  # None: the Report Period's place


def email_apps_summary(t, f, period):
    ds, n = days_desc(t, period)
    first = ds[-1]
    idx = _idx(t)
    if f == "getEmailAppUsageUserCounts":
        rows = []
        for d in ds:
            used = {a: set() for a in APPS}
            for uid, clients, _v in idx["clients_by_day"].get(d, []):
                if exists_on_r(t, uid):
                    for a in clients:
                        used[a].add(uid)
            rows.append([t.r] + [len(used[a]) for a in APPS] + [d, n])
        return rows
    used = {a: set() for a in APPS}
    versions = {v: set() for v in VERSIONS if v}
    for (uid, d), (clients, version) in t.email_clients.items():
        if first <= d <= t.r and exists_on_r(t, uid):
            for a in clients:
                used[a].add(uid)
            if version:
                versions[version].add(uid)
    if f == "getEmailAppUsageAppsUserCounts":
        return [[t.r] + [len(used[a]) for a in APPS] + [n]]
    return [[t.r] + [len(versions[v]) if v else n for v in VERSIONS]]


def email_apps_detail(t, period=None, date=None):
    asof, first, n = window(t, period, date)
    idx = _idx(t)
    out = []
    for uid, aud in oracle.active_user_detail(t, period, date):
        used = set()
        for d, clients, _v in idx["clients"].get(uid, []):
            if first <= d <= asof:
                used |= clients
        if not (aud[5] == "True" or used):
            continue
        upn, name = t.names[uid]
        out.append((uid, [asof, upn, name, aud[3], aud[4], aud[11]] + ["Yes" if a in used else "" for a in APPS] + [n]))
    return out


# ------------------------------------------------------------------ entry points

def keyed_rows(t, f, period=None, date=None):
    """[(uid of the named user or site owner, or None; [row values])] in report order
    (memoized per Tenant: the tests ask for the same report in several forms)."""
    if t.r is None:
        return []
    memo = t.__dict__.setdefault("_workload_memo", {})
    key = (f, period.upper() if period else None, date)
    if key not in memo:
        memo[key] = _keyed_rows(t, f, period, date)
    return memo[key]


def _keyed_rows(t, f, period=None, date=None):
    if f in ("getEmailActivityUserDetail", "getOneDriveActivityUserDetail", "getSharePointActivityUserDetail"):
        return activity_detail(t, f, period, date)
    if f == "getEmailAppUsageUserDetail":
        return email_apps_detail(t, period, date)
    if f == "getMailboxUsageDetail":
        return mailbox_detail(t, period)
    if f in ("getOneDriveUsageAccountDetail", "getSharePointSiteUsageDetail"):
        return site_detail(t, f, period, date)
    if date is not None:
        raise ValueError(f"{f} has no date=")
    if "Activity" in f:
        rows = activity_daily(t, f, period)
    elif f.startswith("getMailbox"):
        rows = mailbox_daily(t, f, period)
    elif f.startswith("getEmailApp"):
        rows = email_apps_summary(t, f, period)
    else:
        rows = site_daily(t, f, period)
    return [(None, r) for r in rows]


def rows(t, f, period=None, date=None):
    """Rows as the CSV's strings."""
    return [[str(x) for x in r] for _k, r in keyed_rows(t, f, period, date)]


def expected_csv(t, f, period=None, date=None):
    return render(header(f), rows(t, f, period, date))


def to_json(f, row):
    """A CSV row (strings) as its beta JSON entry."""
    out = {}
    for (_csv, key, ty), v in zip(COLUMNS[f], row):
        if ty == "D":
            out[key] = v or None
        elif ty == "I":
            out[key] = int(v)
        elif ty == "B":
            out[key] = v == "True"
        elif ty == "L":
            out[key] = v.split("+") if v else []
        else:  # T, and P (the Report Period is a string in JSON)
            out[key] = v
    return out


def expected_json(t, f, period=None, date=None):
    return [to_json(f, r) for r in rows(t, f, period, date)]


def name_positions(f):
    return [i for i, c in enumerate(COLUMNS[f]) if c[0] in NAME_COLUMNS]


__all__ = ["COLUMNS", "CATALOGUE", "FUNCTIONS", "DETAIL", "WITH_DATE", "DateError", "keyed_rows", "rows",
           "expected_csv", "expected_json", "to_json", "header", "name_positions"]
