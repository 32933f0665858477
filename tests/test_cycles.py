"""Release cycles (DESIGN A5, A6): closes while votes flow, scheduled closes
and a late close after a publish outage, the other orders."""
import json
import math
import threading
import time

from harness import (Cluster, Loader, VoteModel, check, check_ranked, eq, main, make_vote, pb,
                     run_loaders, shard_of, test, wait_until)

NSHARDS = 2


def features(c, model, per_shard):
    owned = {s: [] for s in range(NSHARDS)}
    i = 0
    while min(len(v) for v in owned.values()) < per_shard:
        check(i < 60, "60 submits and not %d features per shard" % per_shard)
        r = c.submit("author", "Cycle feature %d" % i)
        eq(r.status, pb.OK, "submit (error %r)" % r.error)
        model.add_feature(r.submitted.feature_id, "Cycle feature %d" % i)
        owned[shard_of(r.submitted.feature_id, NSHARDS)].append(r.submitted.feature_id)
        i += 1
    return sorted(owned[0][:per_shard] + owned[1][:per_shard], key=model.features.index)


def cycles(cl):
    rep, _ = cl.admin(cycles=True)
    eq(rep.status, pb.OK, "cycles (error %r)" % rep.error)
    return list(rep.cycles.cycles)


@test(timeout=120)
def test_votes_during_closes():
    """Closes while clients vote.  A VoteAck names the cycle that was open
    when the shard committed the vote, so the list of cycle N must hold
    exactly the votes acknowledged with cycle <= N (per shard, a close and
    the commits around it are ordered)."""
    cl = Cluster(shards=NSHARDS).start()
    model = VoteModel()
    with cl.client() as c:
        f = features(c, model, 3)
    stop = threading.Event()
    loaders = [Loader(k, cl.ingest_port, f, stop, users=20, max_batch=16) for k in range(3)]
    closed = []

    def during():
        for n in (1, 2, 3):
            time.sleep(0.8)
            rep, _ = cl.admin(close=True)
            eq((rep.status, rep.closed.cycle), (pb.OK, n), "close %d under load (error %r)" %
               (n, rep.error))
            closed.append(rep.closed)
        time.sleep(0.8)
    stats = run_loaders(loaders, during)
    print("     load: %r" % stats)
    rep, _ = cl.admin(close=True)
    eq((rep.status, rep.closed.cycle), (pb.OK, 4), "close 4 after the load")

    seen = set()
    for t in loaders:
        last = {}
        for fid, user, value, tier, cyc in t.history:
            s = shard_of(fid, NSHARDS)
            check(cyc >= last.get(s, 1), "loader %d: ack cycle went back from %d to %d on shard %d"
                  % (t.k, last.get(s, 1), cyc, s))
            last[s] = cyc
            seen.add(cyc)
    eq(sorted(seen), [1, 2, 3, 4], "cycles named by the acks")

    prev = {}
    for n in (1, 2, 3, 4):
        m = VoteModel()
        for fid in model.features:
            m.add_feature(fid)
        for t in loaders:
            for fid, user, value, tier, cyc in t.history:
                if cyc <= n:
                    m.apply(user, fid, value, tier)
        want = m.ranked()
        rep, _ = cl.admin(ranked=(str(n), 0, ""))
        eq(rep.status, pb.OK, "ranked %d" % n)
        check_ranked(rep.ranked, want, "cycle %d closed under load" % n, prev=prev)
        eq(rep.ranked.total_votes, m.total_votes(), "cycle %d total_votes" % n)
        prev = {r["feature_id"]: r["rank"] for r in want}
    cl.stop()


@test(timeout=90)
def test_every_schedule_and_late_close():
    cl = Cluster(shards=NSHARDS, schedule="every:3s").start()
    sub = cl.sub()
    model = VoteModel()
    with cl.client() as c:
        f = features(c, model, 1)
        for i, fid in enumerate(f):
            for u in range(i + 2):
                r = c.vote("s-%d" % u, fid, 1)
                eq((r.status, r.vote_ack.cycle), (pb.OK, 1), "vote before the first close")
                model.apply("s-%d" % u, fid, 1)
    rl1, _ = sub.recv_ranked(timeout=8)
    eq(rl1.cycle, 1, "first scheduled close")
    check_ranked(rl1, model.ranked(), "cycle 1 closed by schedule")
    check(rl1.scheduled_at_ms > 0, "scheduled close with scheduled_at_ms 0")
    check(abs(rl1.scheduled_at_ms - (rl1.opened_at_ms + 3000)) <= 100,
          "every:3s: cycle opened %d, due %d" % (rl1.opened_at_ms, rl1.scheduled_at_ms))
    check(0 <= rl1.closed_at_ms - rl1.scheduled_at_ms < 1000,
          "closed %d ms after it was due" % (rl1.closed_at_ms - rl1.scheduled_at_ms))
    rl2, _ = sub.recv_ranked(timeout=8)
    eq(rl2.cycle, 2, "second scheduled close")
    check(2500 <= rl2.closed_at_ms - rl1.closed_at_ms <= 4000,
          "every:3s closed %d ms apart" % (rl2.closed_at_ms - rl1.closed_at_ms))
    sub.close()

    # publish away while cycle 3 falls due: it closes late on restart and
    # records both times (B1)
    eq(cl.publish.stop(), 0, "publish exit code")
    time.sleep(max(0.0, rl2.closed_at_ms / 1000.0 + 4.0 - time.time()))
    cl.publish.start()
    wait_until(lambda: [(x.cycle, x.state) for x in cycles(cl)][:3] ==
               [(1, "closed"), (2, "closed"), (3, "closed")], 5, "the late close of cycle 3")
    c3 = cycles(cl)[2]
    check(abs(c3.scheduled_at_ms - (rl2.closed_at_ms + 3000)) <= 100,
          "cycle 3 due at %d, cycle 2 closed at %d" % (c3.scheduled_at_ms, rl2.closed_at_ms))
    check(c3.closed_at_ms - c3.scheduled_at_ms >= 500,
          "cycle 3 closed at %d, due %d: not late?" % (c3.closed_at_ms, c3.scheduled_at_ms))
    rep, _ = cl.admin(ranked=("3", 0, ""))
    eq((rep.ranked.scheduled_at_ms, rep.ranked.closed_at_ms),
       (c3.scheduled_at_ms, c3.closed_at_ms), "cycle 3 list times")
    check_ranked(rep.ranked, model.ranked(), "cycle 3 (closed late)")
    cl.stop()


@test(timeout=60)
def test_weight_change_applies_from_next_close():
    """A5: weights are set at publish; a change applies from the next close
    and leaves closed lists as they were."""
    cl = Cluster(shards=NSHARDS).start()
    model = VoteModel()
    with cl.client() as c:
        f = features(c, model, 2)
        plan = [("member", 5, 0), ("core", 2, 0), ("honorary", 1, 0), ("core", 1, 1)]
        for fid, (tier, up, down) in zip(f, plan):
            for u in range(up + down):
                v = 1 if u < up else -1
                eq(c.vote("wt-%s-%d" % (tier, u), fid, v, tier).status, pb.OK, "vote")
                model.apply("wt-%s-%d" % (tier, u), fid, v, tier)
    rep, _ = cl.admin(close=True)
    eq(rep.status, pb.OK, "close 1")
    rep, raw1 = cl.admin(ranked=("1", 0, ""))
    check_ranked(rep.ranked, model.ranked(), "cycle 1 with default weights")

    eq(cl.publish.stop(), 0, "publish exit code")
    cl.publish.argv += ["--weight-member", "2", "--weight-core", "1.5", "--weight-honorary", "4.25"]
    cl.publish.start()
    cl.wait_ready()
    eq(cl.admin(ranked=("1", 0, ""))[1], raw1, "cycle 1 bytes after a weight change")
    prev = {r["feature_id"]: r["rank"] for r in model.ranked()}
    m2 = VoteModel({"": 2, "member": 2, "core": 1.5, "honorary": 4.25})
    m2.features, m2.votes, m2.meta = model.features, model.votes, model.meta
    rep, _ = cl.admin(close=True)
    eq((rep.status, rep.closed.cycle), (pb.OK, 2), "close 2")
    rep, _ = cl.admin(ranked=("2", 0, ""))
    check_ranked(rep.ranked, m2.ranked(), "cycle 2 with the new weights", prev=prev)
    p = cl.cli("ranked", "--cycle", "2", "--format", "json")
    eq(p.returncode, 0, "canvass ranked json (stderr %r)" % p.stderr)
    eq([(e["feature_id"], e["score"]) for e in json.loads(p.stdout)["entries"]],
       [(r["feature_id"], r["score"]) for r in m2.ranked()], "CLI scores with fractional weights")
    cl.stop()


def wilson(up, down, z=1.96):
    n = up + down
    if n == 0:
        return 0.0
    p = up / n
    return (p + z * z / (2 * n) - z * math.sqrt((p * (1 - p) + z * z / (4 * n)) / n)) / \
        (1 + z * z / n)


@test(timeout=60)
def test_wilson_order():
    cl = Cluster(shards=NSHARDS).start()
    model = VoteModel()
    with cl.client() as c:
        f = features(c, model, 4)
        # (up, down) per feature; two zero lower bounds tie and keep score order
        plan = [(1, 0), (10, 2), (5, 5), (0, 0), (30, 10), (3, 0), (0, 3), (2, 1)]
        reqs = []
        for fid, (up, down) in zip(f, plan):
            for u in range(up + down):
                v = 1 if u < up else -1
                reqs.append(make_vote(c.rid(), "w-%d" % u, fid, v))
                model.apply("w-%d" % u, fid, v)
        got = c.pipeline(reqs)
        check(all(r.status == pb.OK for r in got.values()), "votes OK")
    by_score = model.ranked()
    score_pos = {r["feature_id"]: i for i, r in enumerate(by_score)}
    want = sorted(by_score, key=lambda r: (-wilson(r["up"], r["down"]), score_pos[r["feature_id"]]))
    want_ids = [r["feature_id"] for r in want]

    for cyc in ("live", "1"):
        if cyc == "1":
            rep, _ = cl.admin(close=True)
            eq(rep.status, pb.OK, "close")
        rep, _ = cl.admin(ranked=(cyc, 0, "wilson"))
        eq(rep.status, pb.OK, "ranked %s wilson (error %r)" % (cyc, rep.error))
        eq(rep.ranked.order, "wilson", "order field")
        eq([e.feature_id for e in rep.ranked.entries], want_ids, "wilson order of %s" % cyc)
        eq([e.rank for e in rep.ranked.entries], list(range(1, len(want) + 1)), "wilson ranks")
        eq([(e.up, e.down) for e in rep.ranked.entries], [(r["up"], r["down"]) for r in want],
           "wilson up/down")
    p = cl.cli("ranked", "--cycle", "1", "--order", "wilson", "--format", "json")
    eq(p.returncode, 0, "canvass ranked --order wilson (stderr %r)" % p.stderr)
    j = json.loads(p.stdout)
    eq((j["order"], [e["feature_id"] for e in j["entries"]]), ("wilson", want_ids), "CLI wilson")
    # the stored score list is untouched by reading it in another order
    rep, _ = cl.admin(ranked=("1", 0, "score"))
    check_ranked(rep.ranked, by_score, "cycle 1 in score order after a wilson read")
    rep, _ = cl.admin(ranked=("1", 0, "bogus"))
    check(rep.status != pb.OK and rep.error, "order 'bogus' accepted: %s" % rep)
    p = cl.cli("ranked", "--order", "bogus")
    check(p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1,
          "canvass ranked --order bogus: rc %d stderr %r" % (p.returncode, p.stderr))
    cl.stop()


@test(timeout=60)
def test_trending_order():
    """A5: `trending` is one of the orders a release manager can pull."""
    cl = Cluster(shards=NSHARDS).start()
    model = VoteModel()
    with cl.client() as c:
        f = features(c, model, 1)
        for u in range(3):
            eq(c.vote("tr-%d" % u, f[0], 1).status, pb.OK, "vote")
    rep, _ = cl.admin(close=True)
    eq(rep.status, pb.OK, "close")
    for cyc in ("live", "1"):
        rep, _ = cl.admin(ranked=(cyc, 0, "trending"))
        eq((rep.status, rep.error), (pb.OK, ""), "ranked %s order trending" % cyc)
        eq(rep.ranked.order, "trending", "order field")
        eq(sorted(e.feature_id for e in rep.ranked.entries), sorted(model.features),
           "trending lists every ranked feature")
    cl.stop()


if __name__ == "__main__":
    main()
