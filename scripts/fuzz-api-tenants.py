#!/usr/bin/env python3
"""The cross-tenant half of scripts/fuzz-api (standard library only).

`before`: provisions tenant B (`fuzz-b`) through the platform API, gives it a partner, a
campaign and a link, and records everything B's admin sees. `after` (once Schemathesis has
fuzzed tenant A): B must see exactly what it saw, none of A's ids, and A's admin key must be
refused under B's slug."""
import json, os, sys, urllib.request, urllib.error

BASE, ADMIN, PLATFORM, WORK = (os.environ[k] for k in ("FUZZ_BASE", "FUZZ_ADMIN", "FUZZ_PLATFORM", "FUZZ_WORK"))
STATE = os.path.join(WORK, "tenant-b.json")
LISTS = ["/partners", "/campaigns", "/commissions", "/payouts", "/webhooks", "/api-keys", "/admins"]


def call(method, url, key, body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def everything(slug, key):
    """Every list B's admin can read, all pages."""
    seen = {}
    for path in LISTS:
        items, cursor = [], None
        while True:
            q = "?limit=100" + (f"&cursor={cursor}" if cursor else "")
            status, body = call("GET", f"{BASE}/api/t/{slug}{path}{q}", key)
            assert status == 200, (path, status, body)
            items += body["data"]
            cursor = body.get("nextCursor")
            if not cursor:
                break
        seen[path] = sorted(json.dumps(i, sort_keys=True) for i in items)
    return seen


def ids_of(seen):
    out = set()
    for items in seen.values():
        for i in items:
            out.add(json.loads(i).get("id"))
    return out


def before():
    status, body = call("POST", f"{BASE}/platform/tenants", PLATFORM, {"slug": "fuzz-b", "name": "Fuzz B"})
    assert status == 201, (status, body)
    key = body["adminKey"]
    s, p = call("POST", f"{BASE}/api/t/fuzz-b/partners", key, {"email": "b@example.com", "name": "B", "sendInvite": False})
    assert s == 201, (s, p)
    s, c = call("POST", f"{BASE}/api/t/fuzz-b/campaigns", key, {"name": "B program", "destinationUrl": "https://b.example.com/", "commissionRule": {"type": "percent", "value": "10", "recurring": True}})
    assert s == 201, (s, c)
    s, l = call("POST", f"{BASE}/api/t/fuzz-b/partners/{p['id']}/links", key, {"campaignId": c.get("id") or c["campaign"]["id"], "linkKey": "fuzz-b-link"})
    assert s == 201, (s, l)
    with open(STATE, "w") as f:
        json.dump({"key": key, "seen": everything("fuzz-b", key)}, f)
    print("fuzz-api: tenant B provisioned and recorded")


def after():
    with open(STATE) as f:
        state = json.load(f)
    now = everything("fuzz-b", state["key"])
    failures = []
    for path, items in state["seen"].items():
        if now[path] != items:
            failures.append(f"tenant B's {path} changed during the fuzz run of tenant A")
    a_ids = ids_of(everything("demo", ADMIN)) - {None}
    leaked = a_ids & ids_of(now)
    if leaked:
        failures.append(f"tenant A's ids visible under tenant B: {sorted(leaked)[:5]}")
    for path in LISTS:
        s, _ = call("GET", f"{BASE}/api/t/fuzz-b{path}", ADMIN)
        if s != 401:
            failures.append(f"tenant A's admin key under tenant B: GET {path} answered {s}, not 401")
    if failures:
        print("fuzz-api: cross-tenant property FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)
    print(f"fuzz-api: cross-tenant property holds ({sum(len(v) for v in now.values())} records of B unchanged, {len(a_ids)} ids of A invisible under B)")


{"before": before, "after": after}[sys.argv[1]]()
