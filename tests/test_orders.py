"""Orders of a ranked list (issue 3; DESIGN A5, docs/ORDERS.md), each on a
hand-computed example: tier weights (and a weight change from the next
close), the score order's tie-breaks, wilson with z = 1.96, and trending
with a short half-life and votes at controlled times."""
import json
import time

from harness import Cluster, check, eq, main, make_submit, make_vote, pb, test
from release_helpers import (Model, check_list, check_store, close, decayed, decline_rest, ranked,
                             ranks_of, submit_until, wilson)

NSHARDS = 2


def both_shards(model, n):
    return lambda owned: model.features[:n] if len(model.features) >= n and all(
        owned.values()) else None


def cast(c, model, ops, what, tier_of, cycle=1):
    """Pipelines votes [(user, feature, value)], each user with tier_of(user);
    every ack must be OK for that feature in that cycle."""
    reqs, want = [], {}
    for user, fid, value in ops:
        req = make_vote(c.rid(), user, fid, value, tier_of(user))
        want[req.request_id] = (fid, model.apply(user, fid, value, tier_of(user)))
        reqs.append(req)
    for rid, r in c.pipeline(reqs).items():
        eq((r.status, r.error, r.vote_ack.feature_id, r.vote_ack.changed, r.vote_ack.cycle),
           (pb.OK, "", want[rid][0], want[rid][1], cycle), "%s: ack of request %d" % (what, rid))


def tier_by_prefix(user):
    return {"m": "member", "c": "core", "h": "honorary"}[user[0]]


@test(timeout=60)
def test_tier_weights_change_the_order():
    cl = Cluster(shards=NSHARDS).start()
    model = Model()
    with cl.client() as c:
        F1, F2, F3, F4 = submit_until(c, model, both_shards(model, 4), NSHARDS, "Tiered")
        decline_rest(cl, model, [F1, F2, F3, F4])
        ops = [("m%d" % i, F1, 1) for i in range(1, 6)]                   # 5 members: 5
        ops += [("h1", F2, 1)]                                            # 1 honorary: 10
        ops += [("c1", F3, 1), ("c2", F3, 1)]                             # 2 core: 6
        ops += [("m%d" % i, F4, 1) for i in range(1, 5)] + [("c3", F4, -1)]  # 4 - 3 = 1
        cast(c, model, ops, "tiered votes", tier_by_prefix)
        rl, _ = ranked(cl, "live")
        check_list(rl, model, "live, default weights 1/3/10")
        eq([(e.feature_id, e.score) for e in rl.entries],
           [(F2, 10.0), (F3, 6.0), (F1, 5.0), (F4, 1.0)],
           "one honorary vote beats five member votes, two core votes beat five too")

        # m5 re-casts the same up vote on F1 as core: its weight moves 1 -> 3
        r = c.vote("m5", F1, 1, "core")
        eq((r.status, r.error, r.vote_ack.feature_id), (pb.OK, "", F1), "re-cast as core")
        model.apply("m5", F1, 1, "core")
        check_store(cl, model, [F1], "after the re-cast")
        rl, _ = ranked(cl, "live")
        eq([(e.feature_id, e.score, e.up, e.voters) for e in rl.entries],
           [(F2, 10.0, 1, 1), (F1, 7.0, 5, 5), (F3, 6.0, 2, 2), (F4, 1.0, 4, 5)],
           "live after the re-cast")
    close(cl, 1)
    rl1, raw1 = ranked(cl, "1")
    check_list(rl1, model, "cycle 1", prev={})

    # member 2, core 1, honorary 1 from the next close on
    eq(cl.publish.stop(), 0, "publish exit status")
    cl.publish.argv += ["--weight-member", "2", "--weight-core", "1", "--weight-honorary", "1"]
    cl.publish.start()
    cl.wait_ready()
    eq(cl.admin(ranked=("1", 0, ""))[1], raw1, "cycle 1 unchanged by the new weights")
    close(cl, 2)
    rl2, _ = ranked(cl, "2")
    m2 = Model({"": 2, "member": 2, "core": 1, "honorary": 1})
    m2.features, m2.votes, m2.meta = model.features, model.votes, model.meta
    m2.status = model.status  # a spare feature submit_until made is declined in both
    check_list(rl2, m2, "cycle 2 with weights 2/1/1", prev=ranks_of(rl1))
    eq([(e.feature_id, e.score, e.prev_rank) for e in rl2.entries],
       [(F1, 9.0, 2), (F4, 7.0, 4), (F3, 2.0, 3), (F2, 1.0, 1)], "cycle 2 order and scores")
    cl.stop()


@test(timeout=60)
def test_score_order_tie_breaks():
    """Equal score: more voters first; then the older feature; then (same
    creation millisecond) the smaller feature id."""
    t0 = int(time.time() * 1000)
    cl = Cluster(shards=NSHARDS).start()
    model = Model()
    with cl.client() as c:
        A, B, C, D, E, F, G = submit_until(c, model, both_shards(model, 7), NSHARDS, "Tie")
        decline_rest(cl, model, [A, B, C, D, E, F, G])
        ops = [("m1", A, 1), ("m2", A, 1),                                # 2, 2 voters
               ("m1", B, 1), ("m2", B, 1), ("m3", B, 1), ("m4", B, -1),   # 2, 4 voters
               ("m1", C, 1), ("m2", C, 1),                                # 2, 2, after A
               ("c1", D, 1), ("m1", D, -1),                               # 3 - 1, after C
               ("m1", E, 1), ("m2", E, -1),                               # 0, 2 voters
               ("m1", G, -1)]                                             # F: 0, none
        cast(c, model, ops, "tie votes", tier_by_prefix)
        # a burst of features without votes: some share a creation millisecond
        got = c.pipeline([make_submit(c.rid(), "burst", "Burst %d" % i) for i in range(16)])
        burst = []
        for r in got.values():
            eq((r.status, r.error), (pb.OK, ""), "burst submit")
            burst.append(r.submitted.feature_id)
    rl, _ = ranked(cl, "live")
    t1 = int(time.time() * 1000)
    created = {e.feature_id: e.created_ms for e in rl.entries}
    for fid, ms in created.items():
        check(t0 <= ms <= t1, "created_ms of %s is %d, not within the test (%d..%d)" %
              (fid, ms, t0, t1))
    tail = sorted(burst, key=lambda f: (created[f], f.encode()))
    shared = len(burst) - len(set(created[f] for f in burst))
    print("     %d burst features share a creation millisecond with another" % shared)
    eq([e.feature_id for e in rl.entries], [B, A, C, D, E, F] + tail + [G],
       "score order with tie-breaks")
    eq([(e.score, e.voters) for e in rl.entries[:6]],
       [(2.0, 4), (2.0, 2), (2.0, 2), (2.0, 2), (0.0, 2), (0.0, 0)], "scores and voters")
    eq([e.rank for e in rl.entries], list(range(1, len(rl.entries) + 1)), "ranks")
    close(cl, 1)
    rl1, _ = ranked(cl, "1")
    eq([e.feature_id for e in rl1.entries], [e.feature_id for e in rl.entries],
       "the stored list keeps the order")
    cl.stop()


# (up, down) -> lower bound of the Wilson interval, z = 1.96, by hand:
#   (p + z^2/2n - z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), p = up/n
WILSON = [((60, 40), 0.5020), ((20, 5), 0.6087), ((9, 1), 0.5958), ((5, 0), 0.5655),
          ((4, 1), 0.3755), ((1, 0), 0.2065), ((0, 0), 0.0), ((0, 3), 0.0)]


@test(timeout=60)
def test_wilson_order_hand_computed():
    for (up, down), lb in WILSON:
        check(abs(wilson(up, down) - lb) < 5e-5, "wilson(%d, %d) = %.6f, table says %.4f" %
              (up, down, wilson(up, down), lb))
    cl = Cluster(shards=NSHARDS).start()
    model = Model()
    with cl.client() as c:
        f = submit_until(c, model, both_shards(model, len(WILSON)), NSHARDS, "Wilson")
        decline_rest(cl, model, f)
        ops = []
        for fid, ((up, down), _lb) in zip(f, WILSON):
            ops += [("m%03d" % u, fid, 1 if u < up else -1) for u in range(up + down)]
        cast(c, model, ops, "wilson votes", lambda u: "member")
    # score order: 20, 15, 8, 5, 3, 1, 0, -3 (the table's order);
    # wilson: .6087 .5958 .5655 .5020 .3755 .2065, then the two zeros in score order
    by_wilson = [f[1], f[2], f[3], f[0], f[4], f[5], f[6], f[7]]
    for cyc in ("live", "1"):
        if cyc == "1":
            close(cl, 1)
        rl, _ = ranked(cl, cyc, "score")
        eq([e.feature_id for e in rl.entries], f, "%s in score order" % cyc)
        rl, _ = ranked(cl, cyc, "wilson")
        eq(rl.order, "wilson", "order of the list")
        eq([(e.rank, e.feature_id, e.up, e.down) for e in rl.entries],
           [(i + 1, fid, WILSON[f.index(fid)][0][0], WILSON[f.index(fid)][0][1])
            for i, fid in enumerate(by_wilson)], "%s in wilson order" % cyc)
    p = cl.cli("ranked", "--cycle", "1", "--order", "wilson", "--format", "json")
    eq(p.returncode, 0, "canvass ranked --order wilson (stderr %r)" % p.stderr)
    j = json.loads(p.stdout)
    eq((j["order"], [e["feature_id"] for e in j["entries"]]), ("wilson", by_wilson),
       "canvass ranked --order wilson")
    cl.stop()


HALF_LIFE = 2.0   # seconds


def timed_votes(c, model, ops, gains, cycle):
    """Sends votes one at a time, noting for each (weight, time) where the
    time is when the request was sent (ingest stamps it on receipt)."""
    for user, fid, value, tier, weight in ops:
        t0 = time.time()
        r = c.vote(user, fid, value, tier)
        eq((r.status, r.error, r.vote_ack.cycle), (pb.OK, "", cycle), "vote %s on %s" %
           (user, fid))
        model.apply(user, fid, value, tier)
        gains.setdefault(fid, []).append((value * weight, t0 * 1000.0))


def check_trend(entries, gains, t0_ms, t1_ms, what):
    """Each entry's trend equals the decayed gains as of some moment in
    [t0_ms, t1_ms] (when the shards took their standings), within 2 %."""
    for e in entries:
        g = gains.get(e.feature_id, [])
        ends = (decayed(g, t0_ms, HALF_LIFE), decayed(g, t1_ms, HALF_LIFE))
        lo, hi = min(ends), max(ends)
        slack = 0.02 * max(abs(lo), abs(hi)) + 0.005
        check(lo - slack <= e.trend <= hi + slack,
              "%s: trend of %s is %.4f, expected %.4f..%.4f" % (what, e.feature_id, e.trend,
                                                              lo, hi))


@test(timeout=60)
def test_trending_order_hand_computed():
    """tally --half-life 2: a vote gained t seconds ago weighs 2^-(t/2).
    Cycle 1: C gets 6 ups (gains of cycle 1 only).  Cycle 2 at t=0: A 4 member
    ups, D 1 core up, E 2 member ups; at t=4 s: B 2 member ups, E 1 member down.
    Just after t=4: trending B 2, A 4/4 = 1, D 3/4, C 0, E 2/4 - 1 = -0.5;
    score order is C 6, A 4, D 3, B 2, E 1."""
    cl = Cluster(shards=NSHARDS, tally_args=["--half-life", "%g" % HALF_LIFE]).start()
    model = Model()
    gains = {}
    with cl.client() as c:
        C, A, D, B, E = submit_until(c, model, both_shards(model, 5), NSHARDS, "Trending")
        decline_rest(cl, model, [C, A, D, B, E])
        timed_votes(c, model, [("p%d" % i, C, 1, "member", 1) for i in range(6)], {}, 1)
        close(cl, 1)
        t_a = time.time()
        timed_votes(c, model, [("q%d" % i, A, 1, "member", 1) for i in range(4)] +
                    [("k1", D, 1, "core", 3)] +
                    [("q%d" % i, E, 1, "member", 1) for i in (4, 5)], gains, 2)
        time.sleep(max(0.0, t_a + 2 * HALF_LIFE - time.time()))
        timed_votes(c, model, [("q6", B, 1, "member", 1), ("q7", B, 1, "member", 1),
                               ("q8", E, -1, "member", 1)], gains, 2)
        t0 = time.time() * 1000.0
        rl, _ = ranked(cl, "live", "trending")
        t1 = time.time() * 1000.0
    eq(rl.order, "trending", "order of the live list")
    eq([e.feature_id for e in rl.entries], [B, A, D, C, E], "live trending order")
    check_trend(rl.entries, gains, t0, t1, "live")
    eq([e.trend for e in rl.entries if e.feature_id == C], [0.0],
       "no gain in cycle 2 for C")
    rl, _ = ranked(cl, "live", "score")
    eq([e.feature_id for e in rl.entries], [C, A, D, B, E], "live score order")

    # closed: the trend at close is stored with the list
    time.sleep(0.5)
    close(cl, 2)
    rl2, _ = ranked(cl, "2")
    check_list(rl2, model, "cycle 2 (score order)")
    check_trend(rl2.entries, gains, rl2.closed_at_ms - 50, rl2.closed_at_ms, "cycle 2 at close")
    rl2t, _ = ranked(cl, "2", "trending")
    eq([e.feature_id for e in rl2t.entries], [B, A, D, C, E], "cycle 2 trending order")
    eq(sorted((e.feature_id, e.trend) for e in rl2t.entries),
       sorted((e.feature_id, e.trend) for e in rl2.entries), "same trends in either order")
    p = cl.cli("ranked", "--cycle", "2", "--order", "trending", "--format", "json")
    eq(p.returncode, 0, "canvass ranked --order trending (stderr %r)" % p.stderr)
    eq([e["feature_id"] for e in json.loads(p.stdout)["entries"]], [B, A, D, C, E],
       "canvass ranked --order trending")

    # cycle 3 has gained nothing yet: every trend is 0 and the ties fall to
    # voters, then age
    rl3, _ = ranked(cl, "live", "trending")
    eq([(e.feature_id, e.trend) for e in rl3.entries],
       [(C, 0.0), (A, 0.0), (E, 0.0), (B, 0.0), (D, 0.0)], "live trending in a fresh cycle")
    cl.stop()


if __name__ == "__main__":
    main()
