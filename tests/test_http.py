"""The HTTP API (issue 3; DESIGN A3, A7, common/cv_json.h): every action of
A7 as JSON over HTTP on publish, CSV lists, errors as JSON with a fitting
status, and /healthz, /readyz, /metrics on publish, ingest and a shard."""
import re

from harness import check, eq, main, parse_csv, pb, test
from release_helpers import (Model, http, http_cluster, submit_until, wait_http)

NSHARDS = 2
RELEASE = "2026.11.27"
CSV_HEADER = ["rank", "feature_id", "title", "score", "up", "down", "voters", "prev_rank",
              "status", "tags"]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# one sample line of the Prometheus text format
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)"
                    r"( -?\d+)?$")
TIER = {"m": "member", "c": "core", "h": "honorary"}


def start(everywhere, **kw):
    """A cluster whose publish (and, with everywhere, ingest and every
    shard) serves HTTP, started and answering /healthz."""
    cl = http_cluster(shards=NSHARDS, **kw)
    names = ["publish"] + (["ingest"] + ["tally-%d" % i for i in range(NSHARDS)]
                           if everywhere else [])
    for name in names:
        check(name in cl.http_addr, "%s has no --http flag (A3: /healthz, /readyz, /metrics on "
              "every service)" % name)
    cl.start()
    for name in names:
        wait_http("http://%s/healthz" % cl.http_addr[name])
    return cl


def get(cl, path, **kw):
    return http("GET", cl.http_publish + path, **kw)


def post(cl, path, body=None):
    return http("POST", cl.http_publish + path, body=body if body is not None else b"")


def ok_json(r, what, code=200):
    eq(r.code, code, "%s: HTTP status (%r)" % (what, r))
    check(r.ctype.startswith("application/json"), "%s: content-type %r" % (what, r.ctype))
    return r.json()


def error_json(r, code, status, what, error=None):
    """An error reply: HTTP code, JSON {"status": NAME, "error": text}."""
    eq(r.code, code, "%s: HTTP status (%r)" % (what, r))
    check(r.ctype.startswith("application/json"), "%s: content-type %r" % (what, r.ctype))
    j = r.json()
    eq(sorted(j), ["error", "status"], "%s: error body keys" % what)
    eq(j["status"], status, "%s: status" % what)
    check(isinstance(j["error"], str) and j["error"], "%s: empty error text" % what)
    if error is not None:
        eq(j["error"], error, "%s: error text" % what)
    return j


def metrics(base, what):
    """{sample name with labels: value} of a /metrics page, checking its format."""
    r = http("GET", base + "/metrics")
    eq(r.code, 200, "%s /metrics: HTTP status" % what)
    check(r.ctype.startswith("text/plain"), "%s /metrics content-type %r" % (what, r.ctype))
    text = r.body.decode()
    check("# TYPE " in text and "# HELP " in text, "%s /metrics has no TYPE/HELP lines" % what)
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m, "%s /metrics: not a sample line: %r" % (what, line))
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    check(out, "%s /metrics has no samples" % what)
    return out


def entries_want(model, prev=None):
    rows = []
    for r in model.rows():
        fid = r["feature_id"]
        title, tags = model.meta[fid]
        rows.append({"rank": r["rank"], "feature_id": fid, "title": title, "score": r["score"],
                     "up": r["up"], "down": r["down"], "voters": r["voters"],
                     "prev_rank": (prev or {}).get(fid), "status": model.status.get(fid, "open"),
                     "tags": tags})
    return rows


@test(timeout=60)
def test_health_ready_metrics_everywhere():
    cl = start(everywhere=False, publish_args=["--shard-timeout-ms", "1000"])
    # every service that serves HTTP; a shard without it fails at the end
    services = [("publish", cl.http_publish), ("ingest", cl.http_ingest)] + \
        [("tally-%d" % i, u) for i, u in enumerate(cl.http_tally) if u]
    check(cl.http_ingest, "canvass-ingest has no --http flag")
    for name, base in services[1:]:
        wait_http(base + "/healthz")
    before = {}
    for name, base in services:
        eq(ok_json(http("GET", base + "/healthz"), name + " /healthz"), {"status": "ok"},
           name + " /healthz body")
        eq(ok_json(http("GET", base + "/readyz"), name + " /readyz"), {"status": "ready"},
           name + " /readyz body")
        before[name] = metrics(base, name)
        error_json(http("POST", base + "/healthz", body=b""), 405, "INVALID",
                   name + " POST /healthz")
        error_json(http("GET", base + "/nosuch"), 404, "NOT_FOUND", name + " GET /nosuch")

    # 12 votes on a feature of each shard: ingest counts 24 votes answered
    # OK, and each shard counts something that went up by at least 12
    model = Model()
    with cl.client() as c:
        f = submit_until(c, model, lambda o: [o[0][0], o[1][0]] if all(o.values()) else None,
                         NSHARDS, "Metered")
        for fid in f:
            for u in range(12):
                r = c.vote("mu%d" % u, fid, 1)
                eq((r.status, r.error), (pb.OK, ""), "vote")
                model.apply("mu%d" % u, fid, 1)
    votes_ok = 'canvass_ingest_commands_total{op="vote",status="OK"}'
    after = metrics(cl.http_ingest, "ingest")
    eq(after.get(votes_ok, 0) - before["ingest"].get(votes_ok, 0), 24, "ingest " + votes_ok)
    for name, base in services[2:]:
        after = metrics(base, name)
        grew = [k for k in after if after[k] - before[name].get(k, 0) >= 12]
        check(grew, "%s /metrics: no sample grew by 12 after 12 votes:\n%r" % (name, after))

    # a shard away: publish is alive, live lists are 503, stored ones are served
    cl.kill_shard(1)
    eq(http("GET", cl.http_publish + "/healthz").code, 200, "publish /healthz, a shard down")
    error_json(get(cl, "/v1/ranked?cycle=live"), 503, "UNAVAILABLE", "live list, a shard down")
    error_json(post(cl, "/v1/cycles/close"), 503, "UNAVAILABLE", "close, a shard down")
    error_json(get(cl, "/v1/features/%s" % f[1]), 503, "UNAVAILABLE", "feature on the dead shard")
    cl.start_shard(1)
    j = ok_json(get(cl, "/v1/ranked?cycle=live"), "live list, the shard back")
    eq((j["cycle"], j["entries"]), (1, entries_want(model)), "live list after the failed close")
    cl.stop()
    for i, u in enumerate(cl.http_tally):
        check(u, "tally-%d: canvass-tally has no --http flag (A3: /healthz, /readyz and "
              "/metrics on every service)" % i)


@test(timeout=90)
def test_every_route_and_bad_requests():
    cl = start(everywhere=False)
    model = Model()
    with cl.client() as c:
        S1, S2, S3, S4 = submit_until(
            c, model, lambda o: model.features[:4] if len(model.features) >= 4 and
            all(o.values()) else None, NSHARDS, "Http, \"quoted\"")
        ops = [("m1", S1, 1), ("m2", S1, 1), ("h1", S1, 1),
               ("m1", S2, 1), ("c1", S2, -1),
               ("m3", S3, 1), ("m4", S3, 1), ("m1", S3, -1),
               ("m5", S4, 1), ("m1", S4, 1), ("c2", S4, 1)]
        for user, fid, value in ops:
            eq(c.vote(user, fid, value, TIER[user[0]]).status, pb.OK, "vote")
            model.apply(user, fid, value, TIER[user[0]])

    # ranked: live, JSON and CSV
    j = ok_json(get(cl, "/v1/ranked?cycle=live"), "live list")
    eq((j["cycle"], j["closed_at"], j["order"]), (1, None, "score"), "live list head")
    eq(j["entries"], entries_want(model), "live list entries")
    r = get(cl, "/v1/ranked?cycle=live&format=csv")
    eq(r.code, 200, "live CSV")
    check(r.ctype.startswith("text/csv"), "CSV content-type %r" % r.ctype)
    rows = parse_csv(r.body.decode())
    eq(rows[0], CSV_HEADER, "CSV header")
    eq([(x[1], x[2], float(x[3])) for x in rows[1:]],
       [(e["feature_id"], e["title"], e["score"]) for e in entries_want(model)], "CSV rows")
    error_json(get(cl, "/v1/ranked"), 404, "NOT_FOUND", "latest before any close",
               "no cycle has closed yet")

    # close
    j = ok_json(post(cl, "/v1/cycles/close"), "POST /v1/cycles/close")
    eq((j["cycle"], j["state"], j["entries"], j["total_votes"]),
       (1, "closed", len(model.ranked_ids()), model.list_total()), "closed cycle")
    check(RFC3339.match(j["closed_at"]), "closed_at %r" % j["closed_at"])
    eq(j["scheduled_at"], None, "manual close scheduled_at")
    want1 = entries_want(model)

    # the same bytes as the CLI, for every form of the same list
    p = cl.cli("ranked", "--cycle", "1", "--format", "json")
    eq(p.returncode, 0, "canvass ranked json (stderr %r)" % p.stderr)
    r1 = get(cl, "/v1/ranked?cycle=1")
    eq(r1.body.decode().rstrip("\n"), p.stdout.rstrip("\n"), "HTTP JSON == CLI JSON")
    eq(r1.json()["entries"], want1, "cycle 1 entries")
    eq(get(cl, "/v1/ranked").body, r1.body, "latest == cycle 1")
    eq(get(cl, "/v1/ranked?cycle=latest&format=json").body, r1.body, "cycle=latest")
    p = cl.cli("ranked", "--cycle", "1", "--format", "csv")
    eq(p.returncode, 0, "canvass ranked csv")
    eq(get(cl, "/v1/ranked?cycle=1&format=csv").body.decode(), p.stdout, "HTTP CSV == CLI CSV")
    j = ok_json(get(cl, "/v1/ranked?cycle=1&limit=2"), "limit 2")
    eq(j["entries"], want1[:2], "limit 2 entries")
    j = ok_json(get(cl, "/v1/ranked?cycle=1&order=wilson"), "order wilson")
    eq(j["order"], "wilson", "wilson order")
    eq(sorted(e["feature_id"] for e in j["entries"]), sorted(model.ranked_ids()),
       "wilson entries")
    j = ok_json(get(cl, "/v1/ranked?cycle=1&order=trending"), "order trending")
    eq(j["order"], "trending", "trending order")

    # cycles
    j = ok_json(get(cl, "/v1/cycles"), "cycles")
    eq([(x["cycle"], x["state"]) for x in j["cycles"]], [(1, "closed"), (2, "open")], "cycles")
    eq(sorted(j["cycles"][0]), sorted(["cycle", "state", "opened_at", "closed_at", "scheduled_at",
                                       "entries", "total_votes"]), "cycle keys")
    eq(j["cycles"][1]["closed_at"], None, "open cycle closed_at")
    p = cl.cli("cycles", "--format", "json")
    eq(get(cl, "/v1/cycles").body.decode().rstrip("\n"), p.stdout.rstrip("\n"),
       "HTTP cycles == CLI cycles json")

    # features
    j = ok_json(get(cl, "/v1/features"), "features")
    eq(sorted((x["feature_id"], x["status"], x["up"], x["down"], x["voters"])
              for x in j["features"]),
       sorted((f, "open", model.standing(f)["up"], model.standing(f)["down"],
               model.standing(f)["voters"]) for f in model.features), "features")
    j = ok_json(get(cl, "/v1/features/%s" % S1), "feature S1")
    eq((j["feature_id"], j["title"], j["status"], j["release"], j["merged_into"], j["up"],
        j["down"], j["voters"], j["score"]),
       (S1, model.meta[S1][0], "open", None, None, 3, 0, 3, 12), "feature S1")
    eq([h["status"] for h in j["history"]], ["open"], "S1 history")
    eq([(x["cycle"], x["rank"], x["score"]) for x in j["ranks"]], [(1, 1, 12)], "S1 ranks")
    eq((j["live_rank"], j["live_score"]), (1, 12), "S1 live")

    # status
    j = ok_json(post(cl, "/v1/features/%s/status" % S1, {"status": "planned"}), "plan S1")
    j = ok_json(post(cl, "/v1/features/%s/status" % S1,
                     {"status": "shipped", "release": RELEASE}), "ship S1")
    j = ok_json(get(cl, "/v1/features/%s" % S1), "feature S1 shipped")
    eq((j["status"], j["release"]), ("shipped", RELEASE), "S1 shipped")
    eq([(h["status"], h["release"]) for h in j["history"]],
       [("open", None), ("planned", None), ("shipped", RELEASE)], "S1 history")
    eq(j["live_rank"], None, "S1 not ranked live")
    model.status[S1] = "shipped"
    with cl.client() as c:
        eq(c.vote("m9", S1, 1).status, pb.CLOSED, "vote on S1 shipped over HTTP")

    # merge S3 into S4: m1 voted on both (down on S3, up on S4: S4's kept)
    j = ok_json(post(cl, "/v1/features/%s/merge" % S3, {"into": S4}), "merge S3 into S4")
    moved, kept = model.merge(S3, S4)
    eq(j, {"src": S3, "dst": S4, "moved": moved, "kept": kept}, "merge reply")
    eq((moved, kept), (2, 1), "hand count of the merge")
    j = ok_json(get(cl, "/v1/features/%s" % S3), "feature S3")
    eq((j["status"], j["merged_into"]), ("merged", S4), "S3 merged")
    j = ok_json(get(cl, "/v1/ranked?cycle=live"), "live after HTTP changes")
    eq(j["entries"], entries_want(model, {e["feature_id"]: e["rank"] for e in want1}),
       "live entries after ship and merge")

    # voters, two at a time
    want = sorted((u, v, t) for u, (v, t) in model.voters_of(S4).items())
    eq(len(want), 5, "S4 voters in the model")
    got, after, pages = [], None, 0
    while True:
        q = "/v1/features/%s/voters?limit=2" % S4 + ("&after=%s" % after if after else "")
        j = ok_json(get(cl, q), "voters page %d" % pages)
        eq((j["feature_id"], j["total"]), (S4, 5), "voters page head")
        got += [(v["user_id"], v["value"], v["tier"]) for v in j["voters"]]
        pages += 1
        after = j["next_after"]
        if after is None:
            break
        check(pages < 10, "voters paging does not end")
    eq((pages, got), (3, want), "voters of S4 over three pages")
    j = ok_json(get(cl, "/v1/features/%s/voters" % S4), "voters without limit")
    eq(([(v["user_id"], v["value"], v["tier"]) for v in j["voters"]], j["next_after"]),
       (want, None), "every voter on one page")

    # bad requests
    st = "/v1/features/%s/status" % S2
    error_json(post(cl, st, b"{\"status\": \"planned\""), 400, "INVALID", "truncated JSON")
    error_json(post(cl, st, b"planned"), 400, "INVALID", "not JSON")
    error_json(post(cl, st, b""), 400, "INVALID", "empty body")
    error_json(post(cl, st, b"[\"planned\"]"), 400, "INVALID", "JSON array")
    error_json(post(cl, st, {"status": 5}), 400, "INVALID", "status a number")
    error_json(post(cl, st, {"status": "bogus"}), 400, "INVALID", "unknown status")
    error_json(post(cl, st, {"status": "merged"}), 400, "INVALID", "status merged by hand")
    error_json(post(cl, st, {"status": "open", "x": "y"}), 400, "INVALID", "unknown field")
    error_json(post(cl, st, {}), 400, "INVALID", "no status")
    error_json(post(cl, "/v1/features/nosuch/status", {"status": "planned"}), 404, "NOT_FOUND",
               "status of an unknown feature", "no feature 'nosuch'")
    error_json(get(cl, "/v1/features/nosuch"), 404, "NOT_FOUND", "unknown feature",
               "no feature 'nosuch'")
    error_json(get(cl, "/v1/features/nosuch/voters"), 404, "NOT_FOUND", "voters of nosuch",
               "no feature 'nosuch'")
    error_json(get(cl, "/v1/features/a%20b"), 400, "INVALID", "feature id with a space")
    error_json(get(cl, "/v1/features/%s/voters?limit=x" % S2), 400, "INVALID", "limit x")
    mg = "/v1/features/%s/merge" % S2
    error_json(post(cl, "/v1/features/nosuch/merge", {"into": S4}), 404, "NOT_FOUND",
               "merge nosuch", "no feature 'nosuch'")
    error_json(post(cl, mg, {"into": "nosuch"}), 404, "NOT_FOUND", "merge into nosuch",
               "no feature 'nosuch'")
    error_json(post(cl, mg, {"into": S2}), 400, "INVALID", "merge into itself")
    error_json(post(cl, mg, {}), 400, "INVALID", "merge without into")
    error_json(post(cl, mg, b"{"), 400, "INVALID", "merge with bad JSON")
    for q, what in (("cycle=abc", "cycle abc"), ("cycle=-1", "cycle -1"),
                    ("cycle=1&order=bogus", "order bogus"), ("cycle=1&format=xml", "format xml"),
                    ("cycle=1&limit=abc", "limit abc"), ("cycle=1&limit=-2", "limit -2")):
        error_json(get(cl, "/v1/ranked?" + q), 400, "INVALID", what)
    error_json(get(cl, "/v1/ranked?cycle=99"), 404, "NOT_FOUND", "cycle 99")
    for method, path in (("GET", "/v1/cycles/close"), ("DELETE", "/v1/ranked"),
                         ("POST", "/v1/ranked"), ("POST", "/v1/cycles"),
                         ("PUT", "/v1/features/%s/status" % S2),
                         ("GET", "/v1/features/%s/merge" % S2),
                         ("DELETE", "/v1/features/%s" % S2)):
        r = http(method, cl.http_publish + path, body=b"" if method != "GET" else None)
        error_json(r, 405, "INVALID", "%s %s" % (method, path))
        check(r.headers.get("allow"), "%s %s: 405 without an Allow header" % (method, path))
    error_json(get(cl, "/v1/nosuch"), 404, "NOT_FOUND", "unknown path")
    # none of that changed anything
    j = ok_json(get(cl, "/v1/features/%s" % S2), "feature S2 after the bad requests")
    eq((j["status"], j["up"], j["down"]), ("open", 1, 1), "S2 untouched")
    eq(ok_json(get(cl, "/v1/cycles"), "cycles")["cycles"][-1]["cycle"], 2, "still cycle 2")
    cl.stop()


if __name__ == "__main__":
    main()
