"""End to end: submit, vote, close, rank, pull (DESIGN A4, A5, A6, A7).

Two shards; every feature set is chosen so both shards own some of it."""
import datetime
import json
import re

from harness import (Cluster, VoteModel, check, check_ranked, check_shard_standings, eq, frame,
                     load_vectors, main, make_submit, make_vote, parse_csv, pb,
                     pb_field_bytes, pb_field_varint, raw_vote_request, shard_of, test,
                     FEATURE_ID_RE)

NSHARDS = 2
CSV_HEADER = ["rank", "feature_id", "title", "score", "up", "down", "voters", "prev_rank",
              "status", "tags"]
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

MEMBERS = ["m%02d" % i for i in range(30)]
CORE = ["c%d" % i for i in range(7)]
HONORARY = ["h%d" % i for i in range(3)]
TIER = dict([(u, "member") for u in MEMBERS] + [(u, "core") for u in CORE] +
            [(u, "honorary") for u in HONORARY])

TITLES = ['Dark mode, "true" black', "Per-app volume \U0001f50a", "Call\trecording \\ log",
          "Dual\napps", "Smart battery", "Floating windows", "Gesture back",
          "Always-on display", "Theme store", "Notification shade"]
TAGS = [["ui", "display"], [], ["calls"], ["apps"], ["battery"], ["ui"], ["gestures"],
        ["display"], [], ["ui", "notifications"]]


def submit_features(c, model, per_shard=3, author="author"):
    """Submits features until each shard owns per_shard of them; returns the
    chosen ones (per_shard from each shard, oldest first).  Every submitted
    feature is added to the model (the others simply get no votes)."""
    owned = {s: [] for s in range(NSHARDS)}
    i = 0
    while min(len(v) for v in owned.values()) < per_shard:
        check(i < 60, "60 submits and still not %d features per shard: %r" % (per_shard, owned))
        title, tags = TITLES[i % len(TITLES)], TAGS[i % len(TAGS)]
        if i >= len(TITLES):
            title = "%s %d" % (title, i)
        r = c.submit("%s-%d" % (author, i), title, "Body of %s." % title, tags)
        eq(r.status, pb.OK, "submit status (error %r)" % r.error)
        eq(r.WhichOneof("result"), "submitted", "submit result")
        fid = r.submitted.feature_id
        check(FEATURE_ID_RE.match(fid), "feature id %r does not look like F<base36>" % fid)
        check(fid not in model.meta, "feature id %s handed out twice" % fid)
        model.add_feature(fid, title, tags)
        owned[shard_of(fid, NSHARDS)].append(fid)
        i += 1
    chosen = owned[0][:per_shard] + owned[1][:per_shard]
    return sorted(chosen, key=model.features.index)


def cast(c, model, ops, cycle, what):
    """Sends votes one at a time and checks every VoteAck exactly."""
    for user, fid, value in ops:
        tier = TIER[user]
        # Half the member votes leave the tier unset (the default is member).
        wire_tier = "" if tier == "member" and sum(map(ord, user)) % 2 else tier
        want_changed = model.apply(user, fid, value, tier)
        r = c.vote(user, fid, value, wire_tier)
        ctx = "%s: vote %s %s %+d" % (what, user, fid, value)
        eq(r.status, pb.OK, ctx + " status (error %r)" % r.error)
        eq(r.WhichOneof("result"), "vote_ack", ctx + " result")
        eq(r.vote_ack.feature_id, fid, ctx + " ack feature_id")
        eq(r.vote_ack.changed, want_changed, ctx + " ack changed")
        eq(r.vote_ack.cycle, cycle, ctx + " ack cycle")


def cycle1_ops(f):
    """Votes for the six chosen features f[0..5] (oldest first).  Final
    standings (score, voters):
      f3 (8, 12)  f5 (8, 4)  f1 (8, 3)  f2 (0, 4)  f4 (0, 4)  f0 (-7, 2)
    so every tie-break of A5 is needed: equal score -> more voters first;
    equal score and voters -> older first."""
    m, c, h = MEMBERS, CORE, HONORARY
    ops = []
    # noise first: duplicates, retractions, flips, retract-without-vote
    ops += [(m[23], f[3], 1), (m[23], f[3], 0), (m[23], f[3], 0)]
    ops += [(m[24], f[1], 0)]
    ops += [(m[5], f[3], 1), (m[5], f[3], 1)]
    ops += [(m[15], f[3], 1), (m[15], f[3], -1)]
    ops += [(h[2], f[0], 1), (h[2], f[0], 1), (h[2], f[0], 0)]
    ops += [(m[25], f[5], -1), (m[25], f[5], 0)]
    for u in m[26:30]:
        ops += [(u, f[4], 1), (u, f[4], -1), (u, f[4], 0)]
    for u in c[4:7]:
        ops += [(u, f[2], -1), (u, f[2], 0)]
    # the standings
    ops += [(h[0], f[0], -1), (c[0], f[0], 1)]
    ops += [(h[1], f[1], 1), (m[0], f[1], -1), (m[1], f[1], -1)]
    ops += [(m[2], f[2], 1), (m[3], f[2], 1), (m[4], f[2], 1), (c[1], f[2], -1)]
    ops += [(u, f[3], 1) for u in m[5:15]] + [(m[16], f[3], -1)]
    ops += [(m[17], f[4], 1), (m[18], f[4], 1), (m[19], f[4], -1), (m[20], f[4], -1)]
    ops += [(c[2], f[5], 1), (c[3], f[5], 1), (m[21], f[5], 1), (m[22], f[5], 1)]
    # a few duplicates of final votes: changed = false
    ops += [(m[7], f[3], 1), (c[3], f[5], 1), (h[0], f[0], -1)]
    return ops


def cycle2_ops(f, new):
    m, c, h = MEMBERS, CORE, HONORARY
    ops = [(h[0], f[0], 1)]                    # f0: 13, 2 voters -> first
    ops += [(u, f[3], 0) for u in m[5:10]]      # f3: 3, 7 voters
    ops += [(c[1], f[2], 0)]                    # f2: 3, 3 voters (after f3)
    ops += [(m[0], new, 1), (m[1], new, 1)]     # new: 2
    ops += [(m[5], f[3], 0)]                    # already retracted: changed false
    return ops


def check_json(text, rl, model_rows, prev, meta, what):
    try:
        j = json.loads(text)
    except ValueError as e:
        raise AssertionError("%s: not JSON (%s): %r" % (what, e, text[:500]))
    eq(j.get("cycle"), rl.cycle, what + " cycle")
    eq(j.get("order"), "score", what + " order")
    closed = j.get("closed_at")
    check(isinstance(closed, str) and RFC3339_UTC.match(closed),
          "%s: closed_at %r is not RFC 3339 UTC" % (what, closed))
    ts = datetime.datetime.strptime(closed[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    check(abs(ts - rl.closed_at_ms / 1000.0) < 1.001,
          "%s: closed_at %s vs closed_at_ms %d" % (what, closed, rl.closed_at_ms))
    got = j.get("entries")
    eq(len(got), len(model_rows), what + " entry count")
    for e, r in zip(got, model_rows):
        fid = r["feature_id"]
        title, tags = meta[fid]
        want = {"rank": r["rank"], "feature_id": fid, "title": title, "score": r["score"],
                "up": r["up"], "down": r["down"], "voters": r["voters"],
                "prev_rank": prev.get(fid) or None, "status": "open", "tags": tags}
        for k, v in want.items():
            check(k in e, "%s: entry %d has no %r: %r" % (what, r["rank"], k, e))
            eq(e[k], v, "%s: entry %d %s" % (what, r["rank"], k))


def check_csv(text, model_rows, prev, meta, what):
    rows = parse_csv(text)
    check(rows, what + ": empty CSV")
    eq(rows[0], CSV_HEADER, what + " header")
    body = [r for r in rows[1:] if r]
    eq(len(body), len(model_rows), what + " row count")
    for row, r in zip(body, model_rows):
        fid = r["feature_id"]
        title, tags = meta[fid]
        eq(len(row), len(CSV_HEADER), what + " columns in %r" % row)
        d = dict(zip(CSV_HEADER, row))
        ctx = "%s: row %d" % (what, r["rank"])
        eq(int(d["rank"]), r["rank"], ctx + " rank")
        eq(d["feature_id"], fid, ctx + " feature_id")
        eq(d["title"], title, ctx + " title")
        eq(float(d["score"]), r["score"], ctx + " score")
        eq((int(d["up"]), int(d["down"]), int(d["voters"])), (r["up"], r["down"], r["voters"]),
           ctx + " up/down/voters")
        p = prev.get(fid, 0)
        check(d["prev_rank"] == str(p) or (p == 0 and d["prev_rank"] == ""),
              "%s prev_rank: expected %s, got %r" % (ctx, p or "empty", d["prev_rank"]))
        eq(d["status"], "open", ctx + " status")
        for t in tags:
            check(t in d["tags"], "%s tags %r lacks %r" % (ctx, d["tags"], t))
        if not tags:
            eq(d["tags"], "", ctx + " tags")


@test(timeout=150)
def test_vote_close_rank_two_cycles():
    with Cluster(shards=NSHARDS) as cl, cl.client() as c:
        model = VoteModel()
        f = submit_features(c, model)
        eq(sorted(shard_of(x, NSHARDS) for x in f), [0, 0, 0, 1, 1, 1], "shards of the chosen")

        ops = cycle1_ops(f)
        check({u for u, _, _ in ops} == set(TIER), "every one of the 40 users votes")
        cast(c, model, ops, 1, "cycle 1")

        # unknown feature: NOT_FOUND with the exact text, connection goes on
        r = c.vote("m00", "nosuch", 1)
        eq((r.status, r.error), (pb.NOT_FOUND, "no feature 'nosuch'"), "vote on unknown feature")
        eq(r.WhichOneof("result"), None, "NOT_FOUND reply result")

        check_shard_standings(cl, model, "cycle 1")
        want1 = model.ranked()
        sub = cl.sub()
        p = cl.cli("cycle", "close", "--publish", cl.publish_addr)
        eq(p.returncode, 0, "canvass cycle close exit (stderr %r)" % p.stderr)

        rl_pub, _ = sub.recv_ranked()
        eq(rl_pub.cycle, 1, "PUB cycle")
        eq(rl_pub.order, "score", "PUB order")
        eq(rl_pub.total_votes, model.total_votes(), "PUB total_votes")
        check(rl_pub.closed_at_ms >= rl_pub.opened_at_ms > 0,
              "PUB opened/closed at: %d %d" % (rl_pub.opened_at_ms, rl_pub.closed_at_ms))
        check_ranked(rl_pub, want1, "cycle 1 (PUB)", prev={}, meta=model.meta)
        # the tie-breaks, spelled out
        eq([e.feature_id for e in rl_pub.entries[:5]], [f[3], f[5], f[1], f[2], f[4]],
           "cycle 1 order of the tied features")
        eq(rl_pub.entries[-1].feature_id, f[0], "cycle 1 last entry")
        eq(rl_pub.entries[-1].score, -7.0, "negative score")

        rep, raw1 = cl.admin(ranked=("1", 0, "score"))
        eq(rep.status, pb.OK, "REP ranked 1 (error %r)" % rep.error)
        eq(rep.ranked, rl_pub, "REP ranked cycle 1 equals the PUB list")
        rep_latest, raw_latest = cl.admin(ranked=("latest", 0, ""))
        eq(raw_latest, raw1, "REP ranked latest == cycle 1 (bytes)")
        rep3, _ = cl.admin(ranked=("1", 3, "score"))
        eq(rep3.status, pb.OK, "REP ranked limit 3")
        eq([entry for entry in rep3.ranked.entries], list(rl_pub.entries[:3]),
           "REP ranked limit 3 entries")

        p = cl.cli("ranked", "--cycle", "1", "--format", "json", "--publish", cl.publish_addr)
        eq(p.returncode, 0, "canvass ranked json exit (stderr %r)" % p.stderr)
        json1 = p.stdout
        check_json(json1, rl_pub, want1, {}, model.meta, "cycle 1 json")
        p = cl.cli("ranked", "--cycle", "1", "--format", "csv")
        eq(p.returncode, 0, "canvass ranked csv exit (stderr %r)" % p.stderr)
        check_csv(p.stdout, want1, {}, model.meta, "cycle 1 csv")

        # cycle 2: the open cycle is 2 at once, votes go on
        r = c.submit("author-new", "Lock screen clock", "", ["lockscreen"])
        eq(r.status, pb.OK, "submit in cycle 2")
        new = r.submitted.feature_id
        model.add_feature(new, "Lock screen clock", ["lockscreen"])
        cast(c, model, cycle2_ops(f, new), 2, "cycle 2")
        want2 = model.ranked()
        prev1 = {r["feature_id"]: r["rank"] for r in want1}

        rep, _ = cl.admin(ranked=("live", 0, "score"))
        eq(rep.status, pb.OK, "REP ranked live (error %r)" % rep.error)
        eq(rep.ranked.cycle, 2, "live list cycle")
        eq(rep.ranked.closed_at_ms, 0, "live list closed_at_ms")
        check_ranked(rep.ranked, want2, "cycle 2 live", prev=prev1)

        rep, _ = cl.admin(close=True)
        eq(rep.status, pb.OK, "REP close (error %r)" % rep.error)
        eq(rep.WhichOneof("result"), "closed", "REP close result")
        eq((rep.closed.cycle, rep.closed.state), (2, "closed"), "closed CycleInfo")
        eq(rep.closed.entries, len(want2), "closed CycleInfo entries")
        eq(rep.closed.total_votes, model.total_votes(), "closed CycleInfo total_votes")
        rl_pub2, _ = sub.recv_ranked()
        eq(rl_pub2.cycle, 2, "PUB cycle 2")
        check_ranked(rl_pub2, want2, "cycle 2 (PUB)", prev=prev1, meta=model.meta)
        eq(rl_pub2.entries[0].feature_id, f[0], "cycle 2 first")
        eq(rl_pub2.entries[0].prev_rank, len(want1), "cycle 2: f0 was last in cycle 1")
        sub.close()

        rep, _ = cl.admin(cycles=True)
        eq(rep.status, pb.OK, "REP cycles")
        cyc = [(x.cycle, x.state) for x in rep.cycles.cycles]
        eq(cyc, [(1, "closed"), (2, "closed"), (3, "open")], "cycles")
        c1, c2, c3 = rep.cycles.cycles
        eq((c1.entries, c1.total_votes), (len(want1), sum(r["voters"] for r in want1)),
           "cycle 1 info")
        eq((c1.closed_at_ms, c2.closed_at_ms), (rl_pub.closed_at_ms, rl_pub2.closed_at_ms),
           "closed_at_ms in cycles")
        check(abs(c2.opened_at_ms - c1.closed_at_ms) <= 1000,
              "cycle 2 opened %d, cycle 1 closed %d" % (c2.opened_at_ms, c1.closed_at_ms))
        eq(c3.closed_at_ms, 0, "open cycle closed_at_ms")

        p = cl.cli("cycles")
        eq(p.returncode, 0, "canvass cycles exit (stderr %r)" % p.stderr)
        for word in ("1", "2", "3", "closed", "open"):
            check(re.search(r"\b%s\b" % word, p.stdout), "canvass cycles lacks %r: %r" %
                  (word, p.stdout))

        r = c.vote("m00", f[1], 0)
        eq((r.status, r.vote_ack.cycle, r.vote_ack.changed), (pb.OK, 3, True), "vote in cycle 3")

        # cycle 1 is immutable: same bytes, same CLI output
        rep, raw1b = cl.admin(ranked=("1", 0, "score"))
        eq(raw1b, raw1, "REP ranked cycle 1 bytes after later cycles")
        p = cl.cli("ranked", "--cycle", "1", "--format", "json")
        eq(p.returncode, 0, "canvass ranked --cycle 1 again")
        eq(p.stdout, json1, "canvass ranked --cycle 1 json after later cycles")
        p = cl.cli("ranked", "--cycle", "1")
        eq(p.returncode, 0, "canvass ranked table (stderr %r)" % p.stderr)
        for r in want1:
            check(r["feature_id"] in p.stdout, "table lacks %s" % r["feature_id"])

        rep, _ = cl.admin(ranked=("99", 0, ""))
        check(rep.status != pb.OK and rep.error, "REP ranked cycle 99: %s" % rep)
        p = cl.cli("ranked", "--cycle", "99")
        check(p.returncode != 0, "canvass ranked --cycle 99 exit 0: %r" % p.stdout)
        eq(len(p.stderr.strip().splitlines()), 1, "one-line reason for cycle 99: %r" % p.stderr)


@test(timeout=60)
def test_pipelined_votes_across_shards():
    """Pipelined votes on both shards: one reply per request, right ids."""
    with Cluster(shards=NSHARDS) as cl, cl.client() as c:
        model = VoteModel()
        f = submit_features(c, model, per_shard=2)
        reqs, expect = [], {}
        rid = 1000
        for i in range(300):
            user = "p%03d" % i
            for j, fid in enumerate(f):
                value = (1, -1, 1, 0)[(i + j) % 4]
                reqs.append(make_vote(rid, user, fid, value))
                expect[rid] = (fid, model.apply(user, fid, value))
                rid += 1
        got = c.pipeline(reqs)
        eq(sorted(got), sorted(expect), "request ids answered")
        for k, r in got.items():
            eq((r.status, r.vote_ack.feature_id, r.vote_ack.changed, r.vote_ack.cycle),
               (pb.OK, expect[k][0], expect[k][1], 1), "reply to %d" % k)
        rep, _ = cl.admin(ranked=("live", 0, ""))
        eq(rep.status, pb.OK, "live ranked")
        check_ranked(rep.ranked, model.ranked(), "live after pipeline")


def expect_invalid(c, req_bytes, rid, what):
    c.send_frame(req_bytes)
    r = c.recv_reply()
    eq(r.request_id, rid, what + ": request_id")
    eq(r.status, pb.INVALID, what + ": status (error %r)" % r.error)
    check(r.error.strip(), what + ": INVALID without an error text")
    eq(r.WhichOneof("result"), None, what + ": result on INVALID")
    # the connection stays usable
    p = c.ping(rid + 1000000)
    eq((p.status, p.pong.nonce), (pb.OK, rid + 1000000), what + ": ping after INVALID")


@test(timeout=60)
def test_invalid_fields():
    with Cluster(shards=NSHARDS) as cl, cl.client() as c:
        r = c.submit("author", "Target")
        eq(r.status, pb.OK, "submit target")
        fid = r.submitted.feature_id
        rid = [100]

        def nid():
            rid[0] += 1
            return rid[0]

        def bad_vote(user, feature, value=1, tier="", what=""):
            i = nid()
            expect_invalid(c, make_vote(i, user, feature, value, tier).SerializeToString(),
                           i, "vote " + what)

        def bad_raw_vote(user, feature, value=1, tier=b"", what=""):
            i = nid()
            expect_invalid(c, raw_vote_request(i, user, feature, value, tier), i, "vote " + what)

        def ok_vote(user, feature, value=1, tier="", what=""):
            r = c.vote(user, feature, value, tier)
            eq((r.status, r.vote_ack.feature_id), (pb.OK, feature),
               "vote %s (error %r)" % (what, r.error))

        def bad_submit(user, title, body="", tags=(), what=""):
            i = nid()
            expect_invalid(c, make_submit(i, user, title, body, tags).SerializeToString(), i,
                           "submit " + what)

        def ok_submit(user, title, body="", tags=(), what=""):
            r = c.submit(user, title, body, tags)
            eq(r.status, pb.OK, "submit %s (error %r)" % (what, r.error))
            check(FEATURE_ID_RE.match(r.submitted.feature_id), "submit %s id" % what)

        # Vote.user_id: 1-128 bytes of UTF-8
        bad_vote("", fid, what="user_id empty")
        bad_vote("u" * 129, fid, what="user_id 129 bytes")
        bad_vote("\u7528" * 43, fid, what="user_id 129 bytes in 43 characters")
        bad_raw_vote(b"\xff\xfeuser", fid.encode(), what="user_id invalid UTF-8")
        bad_raw_vote(b"\xc0\xaf", fid.encode(), what="user_id overlong UTF-8")
        bad_raw_vote(b"\xed\xa0\x80", fid.encode(), what="user_id surrogate")
        ok_vote("u" * 128, fid, what="user_id 128 bytes")
        ok_vote("\u7528\u6237-1", fid, what="user_id UTF-8")
        ok_vote("x", fid, what="user_id 1 byte")
        # Vote.feature_id: 1-64 bytes of [A-Za-z0-9_-]
        bad_vote("u1", "", what="feature_id empty")
        bad_vote("u1", "a" * 65, what="feature_id 65 bytes")
        for bad in ("a b", "a/b", "F1.2", "caf\u00e9", "a\nb", "'x'"):
            bad_vote("u1", bad, what="feature_id %r" % bad)
        for valid in ("a" * 64, "A-z_09"):
            r = c.vote("u1", valid, 1)
            eq((r.status, r.error), (pb.NOT_FOUND, "no feature '%s'" % valid),
               "vote on valid but unknown id %r" % valid)
        # Vote.value: -1, 0, +1
        for v in (2, -2, 1000000, -2147483648):
            bad_vote("u1", fid, v, what="value %d" % v)
        for v in (-1, 0, 1):
            ok_vote("u1", fid, v, what="value %d" % v)
        # Vote.tier: "", member, core, honorary
        for t in ("admin", "Core", "member ", "HONORARY"):
            bad_vote("u1", fid, 1, t, what="tier %r" % t)
        for t in ("member", "core", "honorary"):
            ok_vote("t-" + t, fid, 1, t, what="tier %r" % t)
        # Submit.user_id
        bad_submit("", "Title", what="user_id empty")
        bad_submit("u" * 129, "Title", what="user_id 129 bytes")
        ok_submit("u" * 128, "Title", what="user_id 128 bytes")
        # Submit.title: 1-200 bytes of UTF-8
        bad_submit("u1", "", what="title empty")
        bad_submit("u1", "t" * 201, what="title 201 bytes")
        bad_submit("u1", "\u7528" * 67, what="title 201 bytes in 67 characters")
        ok_submit("u1", "t" * 200, what="title 200 bytes")
        ok_submit("u1", "\u7528" * 66, what="title 198 bytes in 66 characters")
        i = nid()
        expect_invalid(c, pb_field_varint(1, i) + pb_field_bytes(
            12, pb_field_bytes(1, b"u1") + pb_field_bytes(2, b"bad \xe2\x28\xa1")), i,
            "submit title invalid UTF-8")
        # Submit.body: <= 8192 bytes
        bad_submit("u1", "Body", "b" * 8193, what="body 8193 bytes")
        ok_submit("u1", "Body", "b" * 8192, what="body 8192 bytes")
        ok_submit("u1", "Body", "", what="body empty")
        # Submit.tags: <= 8, each 1-32 bytes
        bad_submit("u1", "Tags", tags=["t%d" % k for k in range(9)], what="9 tags")
        bad_submit("u1", "Tags", tags=["ok", ""], what="empty tag")
        bad_submit("u1", "Tags", tags=["x" * 33], what="tag 33 bytes")
        ok_submit("u1", "Tags", tags=["t%d" % k for k in range(8)], what="8 tags")
        ok_submit("u1", "Tags", tags=["x" * 32], what="tag 32 bytes")
        # Hello.protocol_version: unset or 1
        for v in (2, 1000):
            i = nid()
            req = pb.Request(request_id=i)
            req.hello.client_name = "itest"
            req.hello.protocol_version = v
            expect_invalid(c, req.SerializeToString(), i, "hello protocol_version %d" % v)
        for v in (0, 1):
            req = pb.Request()
            req.hello.client_name = "itest"
            req.hello.protocol_version = v
            r = c.request(req)
            eq(r.status, pb.OK, "hello protocol_version %d (error %r)" % (v, r.error))
        # Request without an op
        i = nid()
        expect_invalid(c, pb.Request(request_id=i).SerializeToString(), i, "request without op")

        # none of the INVALID votes reached the store
        rep, _ = cl.admin(ranked=("live", 0, ""))
        entry = [e for e in rep.ranked.entries if e.feature_id == fid]
        eq(len(entry), 1, "target in the live list")
        # up: 128-byte user, UTF-8 user, "x", three tiers; u1 ends retracted... then +1
        eq((entry[0].up, entry[0].down, entry[0].score), (7, 0, 1 + 1 + 1 + 1 + 1 + 3 + 10),
           "target standing")


@test(timeout=60)
def test_vectors():
    """Each request frame of the shared test vectors, sent byte for byte."""
    vec = {v["name"]: v for v in load_vectors()}
    for name in ("ping", "hello", "vote_up", "vote_down_honorary", "vote_retract", "submit",
                 "reply_vote_ack", "reply_not_found", "reply_bad_frame", "reply_pong"):
        check(name in vec, "vector %s missing from %s" % (name, sorted(vec)))
    with Cluster(shards=NSHARDS) as cl, cl.client() as c:
        # ping: the reply must be the reply_pong vector, byte for byte
        c.send_raw(vec["ping"]["frame"])
        eq(c.recv_frame_bytes().hex(), vec["reply_pong"]["frame"].hex(), "reply to ping vector")
        c.send_raw(vec["hello"]["frame"])
        r = c.recv_reply()
        eq((r.request_id, r.status), (2, pb.OK), "reply to hello vector (error %r)" % r.error)
        # votes on F1a2b3c, which does not exist here
        for name, rid in (("vote_up", 3), ("vote_down_honorary", 4), ("vote_retract", 5)):
            c.send_raw(vec[name]["frame"])
            r = c.recv_reply()
            eq((r.request_id, r.status, r.error), (rid, pb.NOT_FOUND, "no feature 'F1a2b3c'"),
               "reply to %s vector" % name)
        c.send_raw(vec["submit"]["frame"])
        r = c.recv_reply()
        eq((r.request_id, r.status), (6, pb.OK), "reply to submit vector (error %r)" % r.error)
        fid = r.submitted.feature_id
        check(FEATURE_ID_RE.match(fid), "submitted id %r" % fid)
        # the reply_not_found vector, byte for byte
        c.send_frame(make_vote(7, "mifan-100", "nosuch", 1).SerializeToString())
        eq(c.recv_frame_bytes().hex(), vec["reply_not_found"]["frame"].hex(),
           "NOT_FOUND reply bytes")
        # a vote on the submitted feature gives a VoteAck like reply_vote_ack
        want = pb.Reply()
        want.ParseFromString(vec["reply_vote_ack"]["frame"][4:])
        r = c.vote("mifan-100", fid, 1)
        eq((r.status, r.vote_ack.changed, r.vote_ack.cycle, r.vote_ack.feature_id),
           (want.status, want.vote_ack.changed, 1, fid), "vote ack")
        rep, _ = cl.admin(ranked=("live", 0, ""))
        e = [x for x in rep.ranked.entries if x.feature_id == fid]
        eq(len(e), 1, "vector feature listed")
        eq((e[0].title, list(e[0].tags), e[0].up), ("Dark mode for settings", ["ui", "settings"], 1),
           "vector feature as stored")
    with Cluster(shards=NSHARDS) as cl, cl.client() as c:
        # length 0: the reply_bad_frame vector, byte for byte, then close
        c.send_raw(frame(b""))
        eq(c.recv_frame_bytes().hex(), vec["reply_bad_frame"]["frame"].hex(),
           "reply to a length-0 frame")
        check(c.at_eof(), "connection still open after BAD_FRAME")


if __name__ == "__main__":
    main()
