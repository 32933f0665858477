"""Restarts on the same data: nothing acknowledged or closed is lost, cycle
numbering goes on (DESIGN A4 guarantees, A5 immutability, B3)."""

from harness import (Cluster, Proc, VoteModel, binary, check, check_ranked, eq, main,
                     make_vote, pb, shard_of, test)

NSHARDS = 2
TIERS = ("member", "member", "core", "member", "honorary")


def setup_features(c, model, per_shard=3):
    owned = {s: [] for s in range(NSHARDS)}
    i = 0
    while min(len(v) for v in owned.values()) < per_shard:
        check(i < 50, "50 submits and not %d features per shard" % per_shard)
        title, tags = "Restart feature %d" % i, ["t%d" % (i % 3)]
        r = c.submit("author-%d" % i, title, "body", tags)
        eq(r.status, pb.OK, "submit (error %r)" % r.error)
        fid = r.submitted.feature_id
        model.add_feature(fid, title, tags)
        owned[shard_of(fid, NSHARDS)].append(fid)
        i += 1
    return sorted(owned[0][:per_shard] + owned[1][:per_shard], key=model.features.index)


def vote_all(c, model, ops, cycle, what):
    reqs, expect = [], {}
    for user, fid, value in ops:
        tier = TIERS[int(user.split("-")[1]) % len(TIERS)]
        req = make_vote(0, user, fid, value, tier)
        req.request_id = c.rid()
        reqs.append(req)
        expect[req.request_id] = model.apply(user, fid, value, tier)
    got = c.pipeline(reqs)
    for k, r in got.items():
        eq((r.status, r.vote_ack.changed, r.vote_ack.cycle), (pb.OK, expect[k], cycle),
           "%s: ack for request %d (error %r)" % (what, k, r.error))


def ops_for(f, users, seed):
    out = []
    for u in range(users):
        for j, fid in enumerate(f):
            v = ((u * 7 + j * 3 + seed) % 5) - 2   # -2..2: 0 and ±1, some skipped
            if v in (-1, 0, 1):
                out.append(("user-%d" % u, fid, v))
    return out


def timeless(entries):
    """Entries without the fields that move with the clock (the trending
    score of a live list decays while time passes)."""
    out = []
    for e in entries:
        c = pb.RankedEntry()
        c.CopyFrom(e)
        if "trend" in c.DESCRIPTOR.fields_by_name:
            c.ClearField("trend")
        out.append(c)
    return out


def cycles_of(cl):
    rep, _ = cl.admin(cycles=True)
    eq(rep.status, pb.OK, "cycles (error %r)" % rep.error)
    return list(rep.cycles.cycles)


@test(timeout=120)
def test_full_stop_and_start_keeps_everything():
    cl = Cluster(shards=NSHARDS).start()
    model = VoteModel()
    with cl.client() as c:
        f = setup_features(c, model)
        vote_all(c, model, ops_for(f, 60, 0), 1, "cycle 1")
    rep, _ = cl.admin(close=True)
    eq((rep.status, rep.closed.cycle), (pb.OK, 1), "close 1 (error %r)" % rep.error)
    want1 = model.ranked()
    rep, raw1 = cl.admin(ranked=("1", 0, ""))
    check_ranked(rep.ranked, want1, "cycle 1 before restart", prev={}, meta=model.meta)
    with cl.client() as c:
        vote_all(c, model, ops_for(f, 60, 2), 2, "cycle 2 before restart")
    live_before, _ = cl.admin(ranked=("live", 0, ""))
    cycles_before = cycles_of(cl)
    eq([(x.cycle, x.state) for x in cycles_before], [(1, "closed"), (2, "open")], "cycles")

    rcs = cl.stop()
    eq(rcs, {p.name: 0 for p in cl.procs}, "exit codes after SIGTERM")
    cl.start()

    rep, raw1b = cl.admin(ranked=("1", 0, ""))
    eq(raw1b, raw1, "ranked cycle 1 bytes across a restart")
    eq(cycles_of(cl), cycles_before, "cycles across a restart")
    live_after, _ = cl.admin(ranked=("live", 0, ""))
    eq(live_after.ranked.cycle, 2, "open cycle after restart")
    eq(live_after.ranked.opened_at_ms, live_before.ranked.opened_at_ms, "cycle 2 opened_at_ms")
    eq(timeless(live_after.ranked.entries), timeless(live_before.ranked.entries), "live entries")
    prev1 = {r["feature_id"]: r["rank"] for r in want1}
    check_ranked(live_after.ranked, model.ranked(), "live after restart", prev=prev1)

    # every stored vote is still there with its value: sending it again
    # changes nothing; every retracted one is still absent
    with cl.client() as c:
        again = [(u, fid, v) for (fid, u), (v, _t) in sorted(model.votes.items())]
        again += [("user-%d" % u, fid, 0) for u in range(60) for fid in f
                  if (fid, "user-%d" % u) not in model.votes][:50]
        vote_all(c, model, again, 2, "re-sent after restart")
        r = c.submit("author-late", "After the restart")
        eq(r.status, pb.OK, "submit after restart")
        check(r.submitted.feature_id not in model.meta, "feature id reused after restart")
        model.add_feature(r.submitted.feature_id, "After the restart", [])
        vote_all(c, model, [("user-1", r.submitted.feature_id, 1)], 2, "vote on the new one")

    rep, _ = cl.admin(close=True)
    eq((rep.status, rep.closed.cycle), (pb.OK, 2), "close after restart numbers cycle 2")
    rep, raw2 = cl.admin(ranked=("2", 0, ""))
    check_ranked(rep.ranked, model.ranked(), "cycle 2", prev=prev1, meta=model.meta)

    # and once more: both closed cycles survive, cycle 3 is open
    rcs = cl.stop()
    eq(rcs, {p.name: 0 for p in cl.procs}, "exit codes after the second SIGTERM")
    cl.start()
    eq(cl.admin(ranked=("1", 0, ""))[1], raw1, "cycle 1 bytes after the second restart")
    eq(cl.admin(ranked=("2", 0, ""))[1], raw2, "cycle 2 bytes after the second restart")
    eq([(x.cycle, x.state) for x in cycles_of(cl)], [(1, "closed"), (2, "closed"), (3, "open")],
       "cycles after the second restart")
    with cl.client() as c:
        r = c.vote("user-1", f[0], 1)
        eq((r.status, r.vote_ack.cycle), (pb.OK, 3), "a vote after the second restart")
    cl.stop()


@test(timeout=90)
def test_kill9_publish_and_ingest():
    """kill -9 of publish or ingest loses nothing: the cycle history lives in
    publish's LMDB, votes in the shards."""
    cl = Cluster(shards=NSHARDS).start()
    model = VoteModel()
    with cl.client() as c:
        f = setup_features(c, model, per_shard=2)
        vote_all(c, model, ops_for(f, 30, 1), 1, "cycle 1")
    rep, _ = cl.admin(close=True)
    eq(rep.status, pb.OK, "close 1")
    _, raw1 = cl.admin(ranked=("1", 0, ""))

    cl.publish.kill9()
    cl.publish.start()
    cl.wait_ready()
    eq(cl.admin(ranked=("1", 0, ""))[1], raw1, "cycle 1 bytes after kill -9 of publish")
    eq([(x.cycle, x.state) for x in cycles_of(cl)], [(1, "closed"), (2, "open")],
       "cycles after kill -9 of publish")

    cl.ingest.kill9()
    cl.ingest.start()
    cl.wait_ready()
    with cl.client() as c:
        again = [(u, fid, v) for (fid, u), (v, _t) in sorted(model.votes.items())]
        vote_all(c, model, again, 2, "re-sent after kill -9 of ingest")
    rep, _ = cl.admin(close=True)
    eq((rep.status, rep.closed.cycle), (pb.OK, 2), "close 2")
    rep, _ = cl.admin(ranked=("2", 0, ""))
    prev1 = {r["feature_id"]: i + 1 for i, r in enumerate(model.ranked())}
    check_ranked(rep.ranked, model.ranked(), "cycle 2 after kill -9s", prev=prev1)
    cl.stop()


@test(timeout=60)
def test_shard_refuses_another_shard_count():
    cl = Cluster(shards=NSHARDS).start()
    with cl.client() as c:
        r = c.submit("a", "Something")
        eq(r.status, pb.OK, "submit")
    eq(cl.stop(), {p.name: 0 for p in cl.procs}, "exit codes")
    wrong = Proc("tally-0-wrong-count", [
        binary("canvass-tally"), "--shard", "0", "--shards", "3", "--bind", cl.tally_eps[0],
        "--data", cl.tally_dir(0)], cl._log("tally-0-wrong-count")).start()
    try:
        rc = wrong.wait(15)
    except Exception:
        raise AssertionError("canvass-tally with --shards 3 on a 2-shard store kept running")
    eq(rc, 2, "exit code of a shard started with another shard count")
    log = "\n".join(wrong.log_tail(50))
    check("shard count mismatch" in log, "no 'shard count mismatch' in its log:\n" + log)
    # the store is untouched: the right count still starts
    cl.start()
    rep, _ = cl.admin(ranked=("live", 0, ""))
    eq(len(rep.ranked.entries), 1, "features after the refused start")
    cl.stop()


if __name__ == "__main__":
    main()
