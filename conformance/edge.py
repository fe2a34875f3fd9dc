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
    return out


def write(path, r, first_user, commas=True):
    """`commas=False`: the same batch with no comma in any display name (for clients that split
    CSV lines on every comma)."""
    with open(path, "w") as f:
        for rec in records(r, first_user):
            if not commas and rec["type"] == "user":
                rec = dict(rec, displayName=rec["displayName"].replace(",", ""))
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
