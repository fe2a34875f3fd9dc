"""A second, hand-written ingest batch laid on top of the generated tenant, dated relative to
its Report Refresh Date R, so that every boundary of the per-user reports is exercised
whatever the generator's random draw: users deleted on R, R−6, R−7, R−27, R−28 and R+1,
licenses and products assigned or removed exactly on R or R+1, activations starting or ending
on R or after it, activity after R, a user with no data at all, a user only with an
activation (no assignment), product types whose byte order differs from a case-insensitive
order, a display name that needs CSV quoting, and a later `user` record renaming a generated
user (who keeps their place in the order)."""
import json

import oracle


def uid(n):
    return f"e0e0e0e0-0000-4000-8000-{n:012d}"


def records(r, first_user):
    """The batch as a list of dicts; `first_user` is the generated file's first user record."""
    at = lambda n: oracle.shift(r, n)
    out = []

    def user(n, name, deleted=None):
        out.append({"type": "user", "id": uid(n), "userPrincipalName": f"edge{n}@contoso.onmicrosoft.com",
                    "displayName": name, "deletedDate": deleted})

    def lic(n, service, assigned, removed=None):
        out.append({"type": "serviceLicense", "userId": uid(n), "service": service, "assignedDate": assigned,
                    "removedDate": removed})

    def prod(n, product, assigned, removed=None):
        out.append({"type": "productAssignment", "userId": uid(n), "productType": product, "assignedDate": assigned,
                    "removedDate": removed})

    def act(n, product, dev, platform, activated, deactivated=None, shared=False):
        out.append({"type": "activation", "userId": uid(n), "productType": product, "deviceId": f"edge-{n}-{dev}",
                    "platform": platform, "activatedDate": activated, "deactivatedDate": deactivated,
                    "sharedComputer": shared})

    def activity(n, service, *dates):
        if len(dates) == 1:
            out.append({"type": "activity", "userId": uid(n), "service": service, "date": dates[0]})
        else:
            out.append({"type": "activity", "userId": uid(n), "service": service, "dates": list(dates)})

    apps = "Microsoft 365 Apps for enterprise"
    # Deleted on R, R−6, R−7, R−27, R−28; deleted after R (still exists).
    for n, (delta, name) in enumerate([(0, 'Zoë "Q" O\'Brien, Jr.'), (-6, "Ada Six"), (-7, "Ben Seven"),
                                      (-27, "Cy TwentySeven"), (-28, "Di TwentyEight"), (1, "Ed Tomorrow")], 1):
        user(n, name, at(delta))
        lic(n, "exchange", at(-400))
        lic(n, "teams", at(-300), at(delta - 1) if delta <= 0 else None)
        prod(n, apps, at(-400))
        act(n, apps, 0, "windows", at(-200))
        activity(n, "exchange", at(min(delta, 0) - 1), at(min(delta, 0) - 3))
        activity(n, "teams", at(min(delta, 0) - 2))
    # Only an activation, no assignment; activations starting/ending on R and after it.
    user(10, "Fay Activations")
    act(10, "project client", 0, "mac", r)
    act(10, "project client", 1, "ios", at(-10), r)
    act(10, "project client", 2, "android", at(1))
    act(10, "project client", 3, "windows", at(-100), None, True)
    act(10, "Project Client", 4, "windows10Mobile", at(-5))
    act(10, "\u03a9 Suite", 0, "android", at(-3), at(2))
    # Licenses and products on the boundaries; activity after R and in an unlicensed service.
    user(11, "Gus Boundaries")
    lic(11, "exchange", r)
    lic(11, "oneDrive", at(-50), r)
    lic(11, "yammer", at(1))
    lic(11, "sharePoint", at(-20), at(1))
    prod(11, "Visio Plan 2", at(1))
    prod(11, "Project Plan 3", at(-90), r)
    prod(11, "Office 365 E3", at(-90), at(1))
    prod(11, "office 365 e1", at(-90))
    act(11, "Office 365 E3", 0, "windows", at(-20), None, True)
    act(11, "Office 365 E3", 1, "windows", at(-30))
    act(11, "Visio Plan 2", 0, "mac", at(-1))
    activity(11, "oneDrive", r)
    activity(11, "exchange", at(-1), at(2))
    activity(11, "skypeForBusiness", at(-26))
    # No licenses, products, activations or activity.
    user(12, "Hal Nothing")
    # A later record renames the generated file's first user (who keeps the first place).
    renamed = dict(first_user, displayName="Renamed, First \u00e9")
    out.append(renamed)
    out += workload_records(r, at, user, lic, prod)
    return out


def workload_records(r, at, user, lic, prod):
    """The Exchange, OneDrive and SharePoint facts' boundaries (conformance/workloads.py):
    counters zero, missing, replaced, on R−6/R−7 and after R; a deleted user's counters; a
    user active in SharePoint without its license; mailboxes without a state, without quotas,
    exactly at each quota, deleted (its own deletion or its user's) within the period, created
    after R; sites created on R or after it, deleted within D7, without owner, owned by a user
    deleted on R (a name that needs quoting), with page views and no active file; email
    clients replaced by a later record, after R, of a user without an Exchange license."""
    out = []
    GB = 1 << 30

    def counts(n, workload, date, **c):
        out.append(dict({"type": "activityCounts", "userId": uid(n), "workload": workload, "date": date}, **c))

    def mailbox(n, created, deleted=None, kind="user", quotas=(GB * 49, GB * 99 // 2, GB * 50, GB * 30), archive=False):
        out.append({"type": "mailbox", "userId": uid(n), "createdDate": created, "deletedDate": deleted,
                    "recipientType": kind, "issueWarningQuota": quotas[0], "prohibitSendQuota": quotas[1],
                    "prohibitSendReceiveQuota": quotas[2], "deletedItemQuota": quotas[3], "hasArchive": archive})

    def mday(n, date, storage, items=100):
        out.append({"type": "mailboxDay", "userId": uid(n), "date": date, "itemCount": items, "storageUsed": storage,
                    "deletedItemCount": items // 10, "deletedItemSize": storage // 50})

    def site(sid, kind, url, owner, created, deleted=None, template="STS#3"):
        out.append({"type": "site", "id": sid, "kind": kind, "url": url, "ownerId": owner and uid(owner),
                    "rootWebTemplate": template, "createdDate": created, "deletedDate": deleted})

    def sday(sid, date, files, active=0, views=0, visited=0, storage=None, allocated=1 << 40):
        out.append({"type": "siteDay", "siteId": sid, "date": date, "fileCount": files, "activeFileCount": active,
                    "pageViewCount": views, "visitedPageCount": visited,
                    "storageUsed": files * 1000 if storage is None else storage, "storageAllocated": allocated})

    def clients(n, date, apps, version=None):
        out.append({"type": "emailClients", "userId": uid(n), "date": date, "clients": apps, "outlookVersion": version})

    apps = "Microsoft 365 Apps for enterprise"
    # Counters: an all-zero day (no activity), missing counters, a record replaced by a later
    # one, the D7 boundary (R−6 in, R−7 out), after R (never counted).
    user(20, "Ivy Counters")
    for s in ["exchange", "oneDrive", "sharePoint"]:
        lic(20, s, at(-100))
    prod(20, apps, at(-100))
    counts(20, "exchange", r, send=0, receive=0, read=0, meetingCreated=0, meetingInteracted=0)
    counts(20, "exchange", at(-1), send=5, receive=None)
    counts(20, "exchange", at(-6), send=1, receive=2, read=3, meetingCreated=4, meetingInteracted=5)
    counts(20, "exchange", at(-6), send=7, receive=0, read=0, meetingCreated=0, meetingInteracted=1)
    counts(20, "exchange", at(-7), send=100, receive=100, read=100, meetingCreated=100, meetingInteracted=100)
    counts(20, "exchange", at(1), send=1000)
    counts(20, "oneDrive", at(-2), viewedOrEdited=0, synced=3, sharedInternally=0, sharedExternally=2)
    counts(20, "sharePoint", at(-27), viewedOrEdited=1, visitedPages=9)
    counts(20, "sharePoint", at(-28), sharedExternally=4)
    # A user deleted on R−3 with counters before: in the D7 detail (Is Deleted), never in the daily sums.
    user(21, "Jo Deleted", at(-3))
    lic(21, "exchange", at(-200))
    lic(21, "oneDrive", at(-200))
    counts(21, "exchange", at(-4), send=11, receive=12, read=13)
    counts(21, "oneDrive", at(-5), viewedOrEdited=6)
    # SharePoint activity without a SharePoint license; email clients without an Exchange license.
    user(22, "Kim Unlicensed")
    counts(22, "sharePoint", at(-1), visitedPages=4)
    clients(22, at(-3), ["outlookForWeb", "otherForMobile"], "2007")
    # Mailboxes. No state yet; all quotas 0; exactly at the warning, send and send/receive quotas.
    for n, name in [(23, "Lee NoState"), (24, "Max NoQuota"), (25, "Ned Warning"), (26, "Oz Send"), (27, "Pia SendReceive")]:
        user(n, name)
        lic(n, "exchange", at(-300))
    mailbox(20, at(-400), archive=True)
    mday(20, at(-30), GB)
    mday(20, at(-2), GB * 2)
    mday(20, at(1), GB * 60)          # after R: never read
    mailbox(21, at(-400))             # its user is deleted on R−3
    mday(21, at(-10), GB * 3)
    mailbox(23, at(-10))
    mailbox(24, at(-50), quotas=(0, 0, 0, 0))
    mday(24, at(-5), GB * 70)
    q = (GB * 10, GB * 20, GB * 30, GB)
    mailbox(25, at(-50), quotas=q)
    mday(25, at(-4), q[0])
    mailbox(26, at(-50), quotas=q)
    mday(26, at(-40), q[1] - 1)
    mday(26, at(-6), q[1])
    mailbox(27, at(-50), quotas=q, kind="shared")
    mday(27, r, q[2])
    mailbox(22, at(-50), deleted=at(-2))   # the mailbox itself deleted on R−2
    mday(22, at(-20), 12345)
    mailbox(10, at(1))                      # created after R: not yet
    mailbox(1, at(-900))                    # its user (a name with a comma and quotes) deleted on R
    mday(1, at(-3), GB // 2)
    # Sites.
    site("edge-od-20", "oneDrive", "https://contoso-my.sharepoint.com/personal/ivy", 20, at(-300), template="SPSPERS#10")
    sday("edge-od-20", at(-8), 50, active=2)
    sday("edge-od-20", at(-3), 60, active=0, views=10)       # page views do not make a OneDrive active
    sday("edge-od-20", r, 61, active=1)
    sday("edge-od-20", at(1), 99, active=5)                  # after R: never read
    site("edge-od-21", "oneDrive", "https://contoso-my.sharepoint.com/personal/jo", 21, at(-300), deleted=at(-2))
    sday("edge-od-21", at(-5), 7, active=3)
    site("edge-od-new", "oneDrive", "https://contoso-my.sharepoint.com/personal/new", 22, r)
    site("edge-sp-noowner", "sharePoint", "https://contoso.sharepoint.com/sites/no-owner", None, at(-60), template="GROUP#0")
    sday("edge-sp-noowner", at(-6), 10, active=0, views=5, visited=2)   # active by page views alone
    sday("edge-sp-noowner", at(-7), 9, active=4, views=1, visited=1)
    site("edge-sp-zoe", "sharePoint", "https://contoso.sharepoint.com/sites/zo%C3%AB", 1, at(-60))
    sday("edge-sp-zoe", at(-1), 3, active=1, storage=0, allocated=0)
    site("edge-sp-gone", "sharePoint", "https://contoso.sharepoint.com/sites/gone", 20, at(-60), deleted=at(-6))
    sday("edge-sp-gone", at(-7), 5, active=2, views=3, visited=1)
    site("edge-sp-later", "sharePoint", "https://contoso.sharepoint.com/sites/later", 20, at(1))
    sday("edge-sp-later", at(1), 5, active=2)
    # Email clients: replaced by a later record of the same day; after R; version null.
    clients(20, at(-1), ["pop3App", "imap4App"], "2016")
    clients(20, at(-1), ["smtpApp", "mailForMac"], "M365")
    clients(20, at(-8), ["outlookForMac"], "undetermined")
    clients(20, at(1), ["outlookForWindows"], "2010")
    clients(21, at(-4), ["outlookForWindows"], "2013")
    clients(23, r, ["outlookForMobile"])
    return out


def write(path, r, first_user, commas=True):
    """`commas=False`: the same batch with no comma in any display name (for clients that split
    CSV lines on every comma)."""
    with open(path, "w") as f:
        for rec in records(r, first_user):
            if not commas and rec["type"] == "user":
                rec = dict(rec, displayName=rec["displayName"].replace(",", ""))
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
