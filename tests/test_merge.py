"""Merging duplicates (issue 3; DESIGN A7, proto MergeOut/MergeIn): within a
shard and across shards, users who voted on both sides keep their DST vote,
the counts after a merge equal a recount by hand, later votes on SRC land on
DST, a re-run changes nothing, and a merge interrupted anywhere (a shard
killed or stopped, publish killed, a step delivered twice) completes when it
is run again without counting anyone twice."""
import os
import signal
import threading
import time

from harness import (Cluster, check, eq, main, pb, shard_of, tally_standings, test,
                     wait_until)
from release_helpers import (FeatureSub, Model, admin_op, check_dumped, check_every_shard,
                             check_list, check_store, close, counts, merge, ranked, shard_feature,
                             show, submit_until, tally_call)

NSHARDS = 2
TIER = {"s1": "member", "s2": "core", "s3": "honorary", "s4": "member", "d1": "member",
        "d2": "member", "b1": "member", "b2": "honorary", "b3": "member", "t1": "member",
        "t2": "member", "n1": "member", "n2": "member", "x1": "core"}


def pair_ops(src, dst):
    """The votes on a pair before its merge, one at a time in this order:
      s1-s3  only on SRC (member up, core down, honorary up): moved
      s4     up then retracted on SRC: nothing to move
      d1 d2  only on DST
      b1-b3  on both sides: DST's vote kept (b3 voted the same on both)
      t1     SRC up, then DST up and retracted: DST's newer retraction kept
      t2     DST up and retracted, then SRC down: SRC's newer vote moved"""
    return [("s1", src, 1), ("s2", src, -1), ("s3", src, 1), ("s4", src, 1), ("s4", src, 0),
            ("d1", dst, 1), ("d2", dst, 1),
            ("b1", src, 1), ("b1", dst, -1), ("b2", src, -1), ("b2", dst, 1),
            ("b3", dst, 1), ("b3", src, 1),
            ("t1", src, 1), ("t1", dst, 1), ("t1", dst, 0),
            ("t2", dst, 1), ("t2", dst, 0), ("t2", src, -1)]


# The recount by hand of DST after merging a pair voted with pair_ops:
# up d1 d2 b3 s1 (member), b2 s3 (honorary); down b1 t2 (member), s2 (core).
HAND = ([4, 0, 2], [2, 1, 0], 9)          # (up by tier, down by tier, voters)
HAND_SCORE = 4 + 2 * 10 - 2 - 3
# DST before the merge: up d1 d2 b3 (member), b2 (honorary); down b1
HAND_BEFORE = ([3, 0, 1], [1, 0, 0], 5)
# moved s1 s2 s3 t2; kept b1 b2 b3 (t1's retraction on DST stands too, but
# t1 has no vote on DST to keep)
HAND_MOVED_KEPT = (4, 3)


def vote(c, model, user, fid, value, what, cycle=1):
    """A vote sent on fid; the ack must name the feature that holds it."""
    holder = model.target(fid)
    want_changed = model.apply(user, fid, value, TIER[user])
    r = c.vote(user, fid, value, TIER[user])
    ctx = "%s: %s votes %+d on %s" % (what, user, value, fid)
    eq((r.status, r.error), (pb.OK, ""), ctx)
    eq((r.vote_ack.feature_id, r.vote_ack.changed, r.vote_ack.cycle),
       (holder, want_changed, cycle), ctx + ": ack (feature_id, changed, cycle)")


def cast_pair(c, model, src, dst, what):
    for user, fid, value in pair_ops(src, dst):
        vote(c, model, user, fid, value, what)


def check_hand(cl, model, dst, what, hand=HAND):
    up, down = model.per_tier(dst)
    eq((up, down, sum(up) + sum(down)), hand, "%s: the model disagrees with the hand recount" %
       what)
    eq(counts(shard_feature(cl, dst)), hand, "%s: %s on its shard (up by tier, down by tier, "
       "voters) against the hand recount" % (what, dst))


def merged_ok(rep, src, dst, moved_kept, what):
    eq((rep.status, rep.error), (pb.OK, ""), what)
    eq(rep.WhichOneof("result"), "merge", what + ": result")
    eq((rep.merge.src, rep.merge.dst, rep.merge.moved, rep.merge.kept),
       (src, dst) + tuple(moved_kept), what + ": MergeResult (src, dst, moved, kept)")


@test(timeout=90)
def test_merge_within_and_across_shards():
    cl = Cluster(shards=NSHARDS).start()
    model = Model()
    with cl.client() as c:
        def pick(owned):
            for a, b in ((0, 1), (1, 0)):
                if len(owned[a]) >= 3 and len(owned[b]) >= 2:
                    return owned[a][:3], owned[b][:2]
            return None
        a, b = submit_until(c, model, pick, NSHARDS, "Duplicate")
        A_src, A_dst = a[0], a[1]            # one shard
        B_src, B_dst = b[0], a[2]            # two shards
        X = b[1]                             # a bystander
        eq(shard_of(A_src, NSHARDS), shard_of(A_dst, NSHARDS), "A on one shard")
        check(shard_of(B_src, NSHARDS) != shard_of(B_dst, NSHARDS), "B across shards")
        cast_pair(c, model, A_src, A_dst, "pair A")
        cast_pair(c, model, B_src, B_dst, "pair B")
        for user, value in (("s1", 1), ("b1", -1), ("x1", 1)):
            vote(c, model, user, X, value, "bystander")
        check_store(cl, model, model.features, "before the merges")

        fsub = FeatureSub(cl)
        # A through REP, B through the CLI
        rep = merge(cl, A_src, A_dst)
        eq(model.merge(A_src, A_dst), HAND_MOVED_KEPT, "model moved/kept")
        merged_ok(rep, A_src, A_dst, HAND_MOVED_KEPT, "merge A")
        fsub.expect("A merged", kind="merged", feature_id=A_src, status="merged",
                    merged_into=A_dst, voters=8, title=model.meta[A_src][0])
        p = cl.cli("feature", "merge", B_src, B_dst)
        eq(p.returncode, 0, "canvass feature merge (stdout %r, stderr %r)" % (p.stdout, p.stderr))
        check(B_src in p.stdout and B_dst in p.stdout, "merge output names neither side: %r" %
              p.stdout)
        model.merge(B_src, B_dst)
        fsub.expect("B merged", kind="merged", feature_id=B_src, status="merged",
                    merged_into=B_dst, voters=8)

        check_hand(cl, model, A_dst, "after merge A")
        check_hand(cl, model, B_dst, "after merge B")
        check_store(cl, model, [X], "bystander after the merges")
        rl, _ = ranked(cl, "live")
        check_list(rl, model, "live list after the merges")
        eq([e.score for e in rl.entries if e.feature_id in (A_dst, B_dst)], [HAND_SCORE] * 2,
           "DST scores")
        eq(show(cl, A_src).standing.feature.status, "merged", "A_src status")

        # later votes on SRC land on DST
        for src in (A_src, B_src):
            vote(c, model, "s1", src, 1, "s1 again on " + src)        # same vote: unchanged
            vote(c, model, "b1", src, 1, "b1 on " + src)              # overrides DST's -1
            vote(c, model, "n1", src, -1, "n1 new on " + src)
            vote(c, model, "t1", src, 1, "t1 on " + src)              # over DST's retraction
            vote(c, model, "s3", src, 0, "s3 retracts on " + src)     # retracts the moved vote
        # b1 down -> up, t1 up, n1 down, s3 retracted: ups d1 d2 b3 s1 b1 t1,
        # b2 (honorary); downs t2 n1, s2 (core)
        later = ([6, 0, 1], [2, 1, 0], 10)
        check_hand(cl, model, A_dst, "after later votes on A_src", later)
        check_hand(cl, model, B_dst, "after later votes on B_src", later)

        # re-running a complete merge changes nothing (no vote comes back:
        # not s3's, retracted on DST through SRC, nor b1's old -1)
        merged_ok(merge(cl, A_src, A_dst), A_src, A_dst, (0, 0), "merge A again")
        p = cl.cli("feature", "merge", B_src, B_dst)
        eq(p.returncode, 0, "canvass feature merge again (stderr %r)" % p.stderr)
        fsub.quiet(0.3)
        check_hand(cl, model, A_dst, "after merge A again", later)
        check_hand(cl, model, B_dst, "after merge B again", later)

        # merges that make no sense are refused and change nothing
        rep = merge(cl, X, X)
        eq(rep.status, pb.INVALID, "merge into itself (error %r)" % rep.error)
        check(rep.error, "merge into itself: no error text")
        for src, dst in (("nosuch", X), (X, "nosuch")):
            rep = merge(cl, src, dst)
            eq((rep.status, rep.error), (pb.NOT_FOUND, "no feature 'nosuch'"),
               "merge %s into %s" % (src, dst))
        rep = merge(cl, X, A_src)
        eq((rep.status, rep.error), (pb.INVALID, "feature '%s' is merged and cannot take votes"
                                     % A_src), "merge into a merged feature")
        rep = merge(cl, A_src, X)
        eq((rep.status, rep.error), (pb.INVALID, "feature '%s' was already merged into '%s'"
                                     % (A_src, A_dst)), "merge a feature merged elsewhere")
        for status in ("open", "planned", "declined"):
            rep, _ = admin_op(cl, "feature_status", feature_id=A_src, status=status)
            eq((rep.status, rep.error), (pb.INVALID, "feature '%s' was merged into '%s'; its "
                                         "status cannot change" % (A_src, A_dst)),
               "set a merged feature %s" % status)
        fsub.quiet(0.3)
        fsub.close()
        check_store(cl, model, [X, A_dst, B_dst], "after the refused merges")
        eq(show(cl, X).standing.feature.status, "open", "X after the refused merges")

        r = c.vote("x1", X, 1, TIER["x1"])
        eq((r.status, r.vote_ack.feature_id, r.vote_ack.changed), (pb.OK, X, False),
           "vote on the bystander")

        # a chain: A_dst merged into X too; votes on A_src follow both links
        merged_ok(merge(cl, A_dst, X), A_dst, X, model.merge(A_dst, X), "merge A_dst into X")
        vote(c, model, "n2", A_src, 1, "n2 on A_src after the chain")
        vote(c, model, "s2", A_src, 1, "s2 on A_src after the chain")
        check_store(cl, model, [X, B_dst], "after the chain")

    close(cl, 1)
    rl1, _ = ranked(cl, "1")
    check_list(rl1, model, "cycle 1 after the merges", prev={})
    for src, dst in ((A_src, A_dst), (B_src, B_dst)):
        rec = show(cl, src).standing.feature
        eq((rec.status, rec.merged_into), ("merged", dst), "show %s" % src)
        eq([(h.status, h.merged_into) for h in rec.history], [("open", ""), ("merged", dst)],
           "status history of %s" % src)
    check_dumped(cl, model, [B_dst, X], "stored votes")
    check_every_shard(cl, "after the merges")
    cl.stop()


def merge_async(cl, src, dst, timeout):
    """Starts a merge over REP in a thread; returns (thread, result list)."""
    out = []

    def run():
        try:
            out.append(admin_op(cl, "feature_merge", timeout=timeout, src=src, dst=dst)[0])
        except AssertionError as e:   # no reply: publish was killed
            out.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def crash_mid_merge(cl, src, dst):
    """Starts merging src into dst and kills publish (kill -9) as soon as the
    merge is seen begun: publish runs in short slices (SIGCONT ... SIGSTOP)
    and, while it is stopped, the shards are asked how far it got.  When SRC
    is merged but DST untouched, DST's shard is killed first (a MergeIn
    already sent but not committed dies with it).  Returns what the shards
    showed: "not begun", "between steps" or "complete"."""
    before = counts(shard_feature(cl, dst))
    pid = cl.publish.pid
    t, out = merge_async(cl, src, dst, timeout=1)
    state = "not begun"
    deadline = time.monotonic() + 3
    try:
        while time.monotonic() < deadline:
            os.kill(pid, signal.SIGSTOP)
            if counts(shard_feature(cl, dst)) != before:
                state = "complete"
                break
            if shard_feature(cl, src).feature.status == "merged":
                state = "between steps"
                cl.kill_shard(shard_of(dst, cl.n))
                break
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.0003)
    finally:
        cl.publish.kill9()
    t.join(10)
    check(not t.is_alive(), "the merge call is still waiting")
    return state


@test(timeout=120)
def test_merge_interrupted_then_rerun():
    """Cross-shard pairs (SRC on shard 0, DST on shard 1), each merge
    interrupted another way; afterwards every DST holds exactly the hand
    recount."""
    cl = Cluster(shards=NSHARDS, publish_args=["--shard-timeout-ms", "1000"],
                 ingest_args=["--deadline-ms", "1500"]).start()
    model = Model()
    with cl.client() as c:
        pairs = submit_until(
            c, model, lambda o: list(zip(o[0][:6], o[1][:6])) if min(map(len, o.values())) >= 6
            else None, NSHARDS, "Crash duplicate")
        for k, (src, dst) in enumerate(pairs):
            cast_pair(c, model, src, dst, "pair %d" % k)

        # 1. DST's shard killed (kill -9): the merge fails UNAVAILABLE before
        #    anything changed; re-run once the shard is back
        src, dst = pairs[0]
        cl.kill_shard(1)
        rep = merge(cl, src, dst)
        eq((rep.status, rep.error), (pb.UNAVAILABLE, "shard 1 did not answer within 1000 ms; "
                                     "nothing was merged"), "merge with DST's shard down")
        eq(shard_feature(cl, src).feature.status, "open", "SRC after the failed merge")
        cl.start_shard(1)
        rep = merge(cl, src, dst)
        merged_ok(rep, src, dst, HAND_MOVED_KEPT, "merge re-run after the shard restart")
        model.merge(src, dst)
        check_hand(cl, model, dst, "case 1")

        # 2. DST's shard stopped (SIGSTOP): the merge hangs, then fails
        #    UNAVAILABLE; re-run once the shard runs again
        src, dst = pairs[1]
        cl.tallies[1].signal(signal.SIGSTOP)
        try:
            rep = merge(cl, src, dst)
        finally:
            cl.tallies[1].signal(signal.SIGCONT)
        eq(rep.status, pb.UNAVAILABLE, "merge with DST's shard stopped (error %r)" % rep.error)
        rep = merge(cl, src, dst)
        merged_ok(rep, src, dst, HAND_MOVED_KEPT, "merge re-run after SIGCONT")
        model.merge(src, dst)
        check_hand(cl, model, dst, "case 2")

        # 3. the steps by hand, as a publish that resends them would deliver
        #    them: MergeOut, votes on SRC meanwhile (they land on DST), then
        #    MergeIn twice
        src, dst = pairs[2]
        r = tally_call(cl.tally_eps[0], "merge_out", src=src, dst=dst,
                       at_ms=int(time.time() * 1000))
        check(r is not None, "shard 0 does not answer MergeOut")
        eq((r.status, r.error, r.merge.src, r.merge.dst), (pb.OK, "", src, dst), "MergeOut")
        eq(sorted((v.user_id, v.value) for v in r.merge.votes if v.value),
           sorted((u, v) for u, (v, _t) in model.voters_of(src).items()),
           "MergeOut returns SRC's votes")
        votes = list(r.merge.votes)
        model.mark_merged(src, dst)
        vote(c, model, "s1", src, -1, "s1 changes its mind between the steps")
        vote(c, model, "n1", src, 1, "n1 votes between the steps")
        moved_kept = model.merge_in(src, dst)
        eq(moved_kept, (3, 4), "model: s1 voted on DST (through SRC) before the MergeIn")
        for n in (1, 2):
            r = tally_call(cl.tally_eps[1], "merge_in", dst=dst, src=src, votes=votes)
            check(r is not None, "shard 1 does not answer MergeIn")
            eq((r.status, r.error, r.merge.moved, r.merge.kept),
               (pb.OK, "", moved_kept[0] if n == 1 else 0, moved_kept[1]), "MergeIn #%d" % n)
        # ups d1 d2 b3 n1, b2 s3 (honorary); downs b1 t2 s1, s2 (core)
        check_hand(cl, model, dst, "case 3", ([4, 0, 2], [3, 1, 0], 10))

        # 4. publish killed (kill -9) in the middle of a merge and restarted:
        #    a merge it had begun (SRC merged) completes at start without a
        #    re-run, one it had not begun is run again by hand
        states = []
        for src, dst in pairs[3:]:
            state = crash_mid_merge(cl, src, dst)
            if state == "between steps":
                cl.start_shard(1, wait=False)   # (the harness's wait minds the dead publish)
                wait_until(lambda: tally_standings(cl.tally_eps[1], 0.5), 10, "tally-1 back")
                now = counts(shard_feature(cl, dst))
                check(now in (HAND_BEFORE, HAND), "DST after the crash: %r" % (now,))
                if now == HAND_BEFORE:
                    state += " (MergeIn lost)"
                eq(shard_feature(cl, src).feature.status, "merged", "SRC after the crash")
            states.append(state)
            cl.publish.start()
            cl.wait_ready()
            model.merge(src, dst)
            if state == "not begun":
                # publish may have recorded the merge just before it died, and
                # then completes it by itself a second after its start
                rep = merge(cl, src, dst)
                eq((rep.status, rep.error), (pb.OK, ""), "merge re-run after the restart")
                check((rep.merge.moved, rep.merge.kept) in (HAND_MOVED_KEPT, (0, 0)),
                      "merge re-run after the restart: %s" % rep.merge)
            wait_until(lambda: counts(shard_feature(cl, dst)) == HAND, 5,
                       "the merge to complete after the publish restart")
            check_hand(cl, model, dst, "case 4 (%s)" % state)
            eq(show(cl, src).standing.feature.status, "merged", "SRC after the publish restart")
            if state.startswith("between steps"):
                break
        print("     case 4: publish killed with the merge %s" % ", then ".join(states))

        done = pairs[:3 + len(states)]
        # a re-run of a complete merge changes nothing
        for k, (src, dst) in enumerate(done):
            merged_ok(merge(cl, src, dst), src, dst, (0, 0), "pair %d merged again" % k)
        # later votes on any SRC land on its DST
        for k, (src, dst) in enumerate(done):
            vote(c, model, "x1", src, 1, "x1 on merged pair %d" % k)

    dsts = [d for _s, d in pairs]
    check_store(cl, model, dsts, "every DST")
    close(cl, 1)
    rl, _ = ranked(cl, "1")
    check_list(rl, model, "cycle 1 after the interrupted merges", prev={})
    check_dumped(cl, model, dsts, "stored votes of every DST")
    check_every_shard(cl, "after the interrupted merges")
    cl.stop()


if __name__ == "__main__":
    main()
