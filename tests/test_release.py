"""A release manager's cycle, proposal to shipped (issue 3; DESIGN A5, A6,
A7): submit, vote, close, plan, ship with a release name, the voters told
on the PUB stream and listed page by page, the shipped feature closed to
votes and gone from the next list; declining and reopening; the status and
rank history of a feature; a close missed while publish was down done late;
closed lists that never change."""
import csv
import json
import os
import re
import shutil
import time

from harness import Cluster, check, eq, main, make_tmpdir, pb, test, wait_until
from release_helpers import (FeatureSub, Model, admin_op, check_list, close, decline_rest, ranked,
                             ranks_of, set_status, shard_feature, show, submit_until, voter_pages)

NSHARDS = 2
RELEASE = "2026.11.27"
# user -> tier; every user votes with its own tier
TIER = {"a1": "member", "a2": "member", "a3": "member", "a4": "member", "a5": "member",
        "a6": "member", "a7": "member", "a8": "member", "r1": "member", "n1": "member",
        "c1": "core", "c2": "core", "h1": "honorary"}


def vote(c, model, user, fid, value, cycle, what):
    want_changed = model.apply(user, fid, value, TIER[user])
    r = c.vote(user, fid, value, TIER[user])
    ctx = "%s: %s votes %+d on %s" % (what, user, value, fid)
    eq((r.status, r.error), (pb.OK, ""), ctx)
    eq((r.vote_ack.feature_id, r.vote_ack.changed, r.vote_ack.cycle), (fid, want_changed, cycle),
       ctx + ": ack (feature_id, changed, cycle)")


def vote_closed(c, user, fid, value, status):
    r = c.vote(user, fid, value, TIER[user])
    ctx = "%s: %s votes %+d on %s" % (status, user, value, fid)
    eq((r.status, r.error), (pb.CLOSED, "feature '%s' is %s" % (fid, status)), ctx)
    eq(r.WhichOneof("result"), None, ctx + ": result of a CLOSED reply")


def cli_ok(cl, *args):
    p = cl.cli(*args)
    eq(p.returncode, 0, "canvass %s: exit status (stdout %r, stderr %r)" %
       (" ".join(args), p.stdout, p.stderr))
    return p.stdout


def history(fd):
    return [(h.status, h.release, h.merged_into) for h in fd.standing.feature.history]


def cycle_ranks(fd):
    return [(r.cycle, r.rank, r.score, r.up, r.down) for r in fd.ranks]


@test(timeout=90)
def test_release_cycle_proposal_to_shipped():
    t_start = int(time.time() * 1000)
    cl = Cluster(shards=NSHARDS).start()
    model = Model()
    with cl.client() as c:
        def five_on_both_shards(owned):
            if len(model.features) >= 5 and all(owned.values()):
                return model.features[:5]
            return None
        S, D, P, O, Q = submit_until(c, model, five_on_both_shards, NSHARDS, "Release feature")
        decline_rest(cl, model, [S, D, P, O, Q])

        # cycle 1: S 14 (5 voters), P 4, D 3, O 2, Q -1
        ops = [("r1", S, 1), ("r1", S, 0),          # retracted: not a voter
               ("a1", S, 1), ("a2", S, 1), ("c1", S, 1), ("a3", S, -1), ("h1", S, 1),
               ("a4", D, 1), ("a5", D, 1), ("a6", D, 1),
               ("c2", P, 1), ("a1", P, 1),
               ("a2", O, 1), ("a3", O, 1),
               ("a7", Q, -1)]
        for user, fid, value in ops:
            vote(c, model, user, fid, value, 1, "cycle 1")
        close(cl, 1)
        rl1, raw1 = ranked(cl, "1")
        check_list(rl1, model, "cycle 1", prev={})
        eq([e.feature_id for e in rl1.entries], [S, P, D, O, Q], "cycle 1 order")
        json1 = cli_ok(cl, "ranked", "--cycle", "1", "--format", "json")
        csv1 = cli_ok(cl, "ranked", "--cycle", "1", "--format", "csv")
        table1 = cli_ok(cl, "ranked", "--cycle", "1")

        fsub = FeatureSub(cl)
        # plan P (REP), then S through planned (REP), in_progress and shipped (CLI)
        set_status(cl, P, "planned")
        model.status[P] = "planned"
        fsub.expect("P planned", kind="status", feature_id=P, status="planned", release="",
                    merged_into="", voters=2, title=model.meta[P][0])
        set_status(cl, S, "planned")
        model.status[S] = "planned"
        fsub.expect("S planned", kind="status", feature_id=S, status="planned", release="",
                    voters=5)
        eq(cli_ok(cl, "feature", "status", S, "in_progress"),
           "%s is now in_progress; 5 voters will be told\n" % S, "canvass feature status")
        model.status[S] = "in_progress"
        fsub.expect("S in_progress", kind="status", feature_id=S, status="in_progress", voters=5)
        before = int(time.time() * 1000)
        eq(cli_ok(cl, "feature", "status", S, "shipped", "--release", RELEASE),
           "%s is now shipped in %s; 5 voters will be told\n" % (S, RELEASE),
           "canvass feature status shipped")
        model.status[S] = "shipped"
        ev = fsub.expect("S shipped", kind="shipped", feature_id=S, status="shipped",
                         release=RELEASE, merged_into="", voters=5, title=model.meta[S][0])
        check(before - 1000 <= ev.at_ms <= int(time.time() * 1000) + 1000,
              "shipped event at_ms %d, sent at %d" % (ev.at_ms, before))
        # shipping again changes nothing and tells nobody
        set_status(cl, S, "shipped", RELEASE)
        eq(cli_ok(cl, "feature", "status", S, "shipped", "--release", RELEASE),
           "%s is already shipped in %s; nothing changed, no one is told again\n" % (S, RELEASE),
           "canvass feature status shipped again")
        fsub.quiet(0.5)

        # a shipped feature takes no votes: new voter, old voter, retraction
        vote_closed(c, "n1", S, 1, "shipped")
        vote_closed(c, "a1", S, 1, "shipped")
        vote_closed(c, "a3", S, 0, "shipped")

        # the voters to notify, two per page over REP, and through the CLI
        want = model.voters_of(S)
        eq(sorted(want), ["a1", "a2", "a3", "c1", "h1"], "model voters of S")
        pages = voter_pages(cl, S, 2)
        eq([len(p.voters) for p in pages], [2, 2, 1], "voters per page")
        for p in pages:
            eq((p.feature_id, p.total), (S, 5), "voter page feature_id, total")
        got = [(v.user_id, v.value, v.tier or "member") for p in pages for v in p.voters]
        eq(got, [(u, want[u][0], want[u][1]) for u in sorted(want)],
           "voters of S (user order, value, tier)")
        lines = ["%s %+d %s\n" % (u, want[u][0], want[u][1]) for u in sorted(want)]
        eq(cli_ok(cl, "feature", "voters", S), "".join(lines), "canvass feature voters")
        p = cl.cli("feature", "voters", S, "--limit", "2")
        eq((p.returncode, p.stdout, p.stderr),
           (0, "".join(lines[:2]), "canvass: more voters follow: add --after 'a2' for the next "
            "page, or --all for every page\n"), "canvass feature voters --limit 2")
        eq(cli_ok(cl, "feature", "voters", S, "--limit", "2", "--after", "a2"),
           "".join(lines[2:4]), "canvass feature voters --limit 2 --after a2")
        eq(cli_ok(cl, "feature", "voters", S, "--limit", "2", "--all"), "".join(lines),
           "canvass feature voters --limit 2 --all")

        # decline D: closed to votes too
        eq(cli_ok(cl, "feature", "status", D, "declined"),
           "%s is now declined; 3 voters will be told\n" % D, "canvass feature status declined")
        model.status[D] = "declined"
        fsub.expect("D declined", kind="status", feature_id=D, status="declined", voters=3)
        vote_closed(c, "a7", D, 1, "declined")

        # cycle 2's list has neither the shipped nor the declined feature
        vote(c, model, "a8", O, 1, 2, "cycle 2")
        close(cl, 2)
        rl2, raw2 = ranked(cl, "2")
        check_list(rl2, model, "cycle 2", prev=ranks_of(rl1))
        eq([(e.feature_id, e.status) for e in rl2.entries],
           [(P, "planned"), (O, "open"), (Q, "open")], "cycle 2 entries and statuses")
        table2 = cli_ok(cl, "ranked", "--cycle", "2")
        check(table2.endswith("biggest movers: %s \u25b22 (4 \u2192 2), %s \u25b22 (5 \u2192 3), "
                              "%s \u25b21 (2 \u2192 1)\n" % (O, Q, P)),
              "cycle 2 table: movers line:\n%s" % table2)

        # reopen D: it takes votes again and comes back as a new entry
        set_status(cl, D, "open")
        model.status[D] = "open"
        fsub.expect("D reopened", kind="status", feature_id=D, status="open", voters=3)
        vote(c, model, "a8", D, 1, 3, "cycle 3")
        close(cl, 3)
        rl3, _ = ranked(cl, "3")
        check_list(rl3, model, "cycle 3", prev=ranks_of(rl2))
        eq([(e.feature_id, e.score, e.voters, e.prev_rank) for e in rl3.entries],
           [(D, 4.0, 4, 0), (P, 4.0, 2, 1), (O, 3.0, 3, 2), (Q, -1.0, 1, 3)],
           "cycle 3: D back (ties P on score, more voters), new entry")
        table3 = cli_ok(cl, "ranked", "--cycle", "3")
        check(re.search(r"^ +1 +new +4 +4 +0 +4 +%s +open " % D, table3, re.M),
              "cycle 3 table: D is not marked new:\n%s" % table3)
        check(table3.endswith("biggest movers: %s \u25bc1 (1 \u2192 2), %s \u25bc1 (2 \u2192 3), "
                              "%s \u25bc1 (3 \u2192 4)\n" % (P, O, Q)),
              "cycle 3 table: movers line:\n%s" % table3)
        fsub.close()

    # feature show: status history and the rank in every closed cycle
    now = int(time.time() * 1000)
    fd = show(cl, S)
    rec = fd.standing.feature
    eq((rec.feature_id, rec.title, rec.status, rec.release), (S, model.meta[S][0], "shipped",
                                                             RELEASE), "show S record")
    eq(history(fd), [("open", "", ""), ("planned", "", ""), ("in_progress", "", ""),
                     ("shipped", RELEASE, "")], "show S status history")
    at = [h.at_ms for h in rec.history]
    check(t_start - 1000 <= at[0] and at == sorted(at) and at[-1] <= now + 1000,
          "status history times %r not in order within the test (%d..%d)" % (at, t_start, now))
    eq(cycle_ranks(fd), [(1, 1, 14.0, 4, 1)], "show S ranks by cycle")
    eq((fd.live_rank, fd.standing.voters), (0, 5), "show S live rank and voters")
    fd = show(cl, D)
    eq(history(fd), [("open", "", ""), ("declined", "", ""), ("open", "", "")],
       "show D status history")
    eq(cycle_ranks(fd), [(1, 3, 3.0, 3, 0), (3, 1, 4.0, 4, 0)], "show D ranks by cycle")
    eq((fd.live_rank, fd.live_score), (1, 4.0), "show D live rank and score")
    fd = show(cl, P)
    eq(cycle_ranks(fd), [(1, 2, 4.0, 2, 0), (2, 1, 4.0, 2, 0), (3, 2, 4.0, 2, 0)],
       "show P ranks by cycle")
    rep, _ = admin_op(cl, "feature_show", feature_id="nosuch")
    eq((rep.status, rep.error), (pb.NOT_FOUND, "no feature 'nosuch'"), "show unknown feature")
    rep, _ = admin_op(cl, "feature_status", feature_id="nosuch", status="planned")
    eq((rep.status, rep.error), (pb.NOT_FOUND, "no feature 'nosuch'"), "status of nosuch")
    for bad in ("merged", "Planned", "bogus", ""):
        rep, _ = admin_op(cl, "feature_status", feature_id=P, status=bad)
        eq(rep.status, pb.INVALID, "status %r over REP (error %r)" % (bad, rep.error))
        check(rep.error, "status %r: INVALID without a reason" % bad)
    rep, _ = admin_op(cl, "feature_voters", feature_id="nosuch", limit=2)
    eq((rep.status, rep.error), (pb.NOT_FOUND, "no feature 'nosuch'"), "voters of nosuch")
    p = cl.cli("feature", "status", P, "bogus")
    check(p.returncode != 0 and p.stdout == "" and len(p.stderr.splitlines()) == 1,
          "canvass feature status P bogus: rc %d, %r %r" % (p.returncode, p.stdout, p.stderr))
    eq(show(cl, P).standing.feature.status, "planned", "P after the refused changes")

    out = cli_ok(cl, "feature", "show", S)
    check(out.startswith("%s  %s\n  status    shipped in %s\n" % (S, model.meta[S][0], RELEASE)),
          "canvass feature show: head:\n%s" % out)
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    check(re.search(r"^status history\n  %s  open\n  %s  planned\n  %s  in_progress\n  %s  "
                    r"shipped in %s\n" % (when, when, when, when, re.escape(RELEASE)), out, re.M),
          "canvass feature show: status history:\n%s" % out)
    check(re.search(r"^rank history\n  CYCLE  RANK  SCORE  UP  DOWN\n +1 +1 +14 +4 +1\n +live +- +"
                    r"not ranked \(shipped\)\n", out, re.M),
          "canvass feature show: rank history (cycle 1: rank 1, score 14, 4 up, 1 down):\n%s" % out)

    # every feature with its status, over REP and the CLI
    rep, _ = admin_op(cl, "features")
    eq(rep.status, pb.OK, "features (error %r)" % rep.error)
    want = dict((f, "declined") for f in model.features)
    want.update({S: "shipped", D: "open", P: "planned", O: "open", Q: "open"})
    eq(sorted((fs.feature.feature_id, fs.feature.status) for fs in rep.features.features),
       sorted(want.items()), "features and their statuses")
    out = cli_ok(cl, "features")
    check(re.search(r"^%s\s+shipped %s\b" % (S, re.escape(RELEASE)), out, re.M),
          "canvass features lacks '%s shipped %s':\n%s" % (S, RELEASE, out))

    # cycle 1, pulled after all these changes, is what it was at close
    eq(cl.admin(ranked=("1", 0, ""))[1], raw1, "REP ranked 1 bytes")
    eq(cl.admin(ranked=("2", 0, ""))[1], raw2, "REP ranked 2 bytes")
    eq(cli_ok(cl, "ranked", "--cycle", "1", "--format", "json"), json1, "ranked --cycle 1 json")
    eq(cli_ok(cl, "ranked", "--cycle", "1", "--format", "csv"), csv1, "ranked --cycle 1 csv")
    eq(cli_ok(cl, "ranked", "--cycle", "1"), table1, "ranked --cycle 1 table")
    eq(json.loads(json1)["entries"][0]["status"], "open", "S was open when cycle 1 closed")

    # export: features and votes as CSV, every closed list as JSON
    out_dir = os.path.join(make_tmpdir("export"), "week")
    eq(cli_ok(cl, "export", "--out", out_dir),
       "exported %d features, %d votes and 3 closed cycles to %s\n" % (
           len(model.features), len(model.votes), out_dir),
       "canvass export")
    rows = read_csv(out_dir, "features.csv")
    eq(rows[0], ["feature_id", "title", "status", "release", "merged_into", "author",
                 "created_at", "tags", "up", "down", "voters"], "features.csv header")
    releases = {S: RELEASE}
    eq(sorted((r[0], r[1], r[2], r[3], r[4], r[7], int(r[8]), int(r[9]), int(r[10]))
              for r in rows[1:]),
       sorted((f, model.meta[f][0], model.status.get(f, "open"), releases.get(f, ""), "",
               ";".join(model.meta[f][1]), model.standing(f)["up"], model.standing(f)["down"],
               model.standing(f)["voters"]) for f in model.features), "features.csv rows")
    rows = read_csv(out_dir, "votes.csv")
    eq(rows[0], ["feature_id", "user_id", "value", "tier"], "votes.csv header")
    eq(sorted((r[0], r[1], int(r[2]), r[3]) for r in rows[1:]),
       sorted((f, u, v, t) for (f, u), (v, t) in model.votes.items()), "votes.csv rows")
    for n in (1, 2, 3):
        with open(os.path.join(out_dir, "ranked", "cycle-%d.json" % n)) as fp:
            eq(fp.read().rstrip("\n"),
               cli_ok(cl, "ranked", "--cycle", str(n), "--format", "json").rstrip("\n"),
               "ranked/cycle-%d.json" % n)
    with open(os.path.join(out_dir, "cycles.json")) as fp:
        eq(fp.read().rstrip("\n"), cli_ok(cl, "cycles", "--format", "json").rstrip("\n"),
           "cycles.json")
    cl.stop()


def read_csv(d, name):
    with open(os.path.join(d, name), newline="") as fp:
        return [r for r in csv.reader(fp) if r]


@test(timeout=60)
def test_missed_close_done_late():
    """every:3s: publish is down when cycle 2 falls due; it closes it as soon
    as it starts, records when it was due and when it closed, and the votes
    of cycle 2 are in it."""
    cl = Cluster(shards=NSHARDS, schedule="every:3s").start()
    model = Model()
    sub = cl.sub()
    with cl.client() as c:
        f = submit_until(c, model, lambda o: model.features[:2] if all(o.values()) else None,
                         NSHARDS, "Late feature")
        vote(c, model, "a1", f[0], 1, 1, "cycle 1")
        rl1, _ = sub.recv_ranked(timeout=8)
        eq(rl1.cycle, 1, "first scheduled close")
        check_list(rl1, model, "cycle 1 (scheduled)", prev={})
        due1 = rl1.opened_at_ms + 3000
        eq(rl1.scheduled_at_ms, due1, "cycle 1 scheduled_at_ms = opened_at_ms + 3 s")
        check(0 <= rl1.closed_at_ms - due1 < 1000, "cycle 1 closed %d ms after it was due" %
              (rl1.closed_at_ms - due1))

        eq(cl.publish.stop(), 0, "publish exit status on SIGTERM")
        vote(c, model, "a2", f[1], 1, 2, "while publish is down")
        sub.close()
        # stay away until 1.5 s past the due time of cycle 2
        time.sleep(max(0.0, (rl1.closed_at_ms + 3000 + 1500) / 1000.0 - time.time()))
        cl.publish.start()
        t_up = int(time.time() * 1000)

        def closed_late():
            rep, _ = cl.admin(cycles=True, timeout=1)
            return [(x.cycle, x.state) for x in rep.cycles.cycles][:3] == \
                [(1, "closed"), (2, "closed"), (3, "open")]
        wait_until(closed_late, 5, "the late close of cycle 2")
        rep, _ = cl.admin(cycles=True)
        c2 = rep.cycles.cycles[1]
        eq(c2.opened_at_ms, rl1.closed_at_ms, "cycle 2 opened when cycle 1 closed")
        eq(c2.scheduled_at_ms, c2.opened_at_ms + 3000, "cycle 2 due 3 s after it opened")
        check(c2.closed_at_ms >= t_up - 50 and c2.closed_at_ms - c2.scheduled_at_ms >= 1400,
              "cycle 2 due %d, closed %d, publish up at %d: not closed late on start" %
              (c2.scheduled_at_ms, c2.closed_at_ms, t_up))
        rl2, _ = ranked(cl, "2")
        eq((rl2.scheduled_at_ms, rl2.closed_at_ms, rl2.opened_at_ms),
           (c2.scheduled_at_ms, c2.closed_at_ms, c2.opened_at_ms), "cycle 2 list times")
        check_list(rl2, model, "cycle 2 (closed late)", prev=ranks_of(rl1))
        out = cli_ok(cl, "cycles", "--format", "json")
        j2 = [x for x in json.loads(out)["cycles"] if x["cycle"] == 2]
        eq(len(j2), 1, "cycle 2 in canvass cycles --format json")
        check(j2[0]["scheduled_at"] and j2[0]["closed_at"] and
              j2[0]["scheduled_at"] < j2[0]["closed_at"],
              "cycle 2 scheduled_at / closed_at in JSON: %r" % j2[0])
        vote(c, model, "a3", f[0], 1, 3, "after the late close")
    cl.stop()


@test(timeout=30)
def test_created_event():
    """A6: a submitted feature is announced on the PUB stream as `feature` +
    FeatureEvent{kind: created}."""
    cl = Cluster(shards=NSHARDS).start()
    sub = cl.sub(topics=(b"feature",))
    with cl.client() as c:
        r = c.submit("alice", "Announce me", "", ["ui"])
        eq((r.status, r.error), (pb.OK, ""), "submit")
    fid = r.submitted.feature_id
    parts = sub.recv(timeout=5)
    eq(parts[0], b"feature", "topic")
    ev = pb.FeatureEvent()
    ev.ParseFromString(parts[1])
    eq((ev.kind, ev.feature_id, ev.status, ev.title, ev.voters), ("created", fid, "open",
                                                                 "Announce me", 0),
       "created event")
    sub.close()
    cl.stop()


@test(timeout=60)
def test_close_failed_with_a_shard_down_then_retried():
    """A close that fails because a shard is down must not leave the cycles
    out of step: every vote acknowledged with cycle N is in the list of
    cycle N+1 at the earliest, never in the list of N (A5: closing freezes
    each standing at that instant)."""
    cl = Cluster(shards=NSHARDS, publish_args=["--shard-timeout-ms", "1000"]).start()
    model = Model()
    with cl.client() as c:
        f = submit_until(c, model, lambda o: [o[0][0], o[1][0]] if all(o.values()) else None,
                         NSHARDS, "Failed close")
        decline_rest(cl, model, f)
        for fid in f:
            vote(c, model, "a1", fid, 1, 1, "before the close")
        cl.kill_shard(1)
        rep, _ = cl.admin(close=True)
        eq(rep.status, pb.UNAVAILABLE, "close with shard 1 down (error %r)" % rep.error)
        rep, _ = cl.admin(cycles=True)
        eq([(x.cycle, x.state) for x in rep.cycles.cycles], [(1, "open")], "cycles after it")
        r = c.vote("a2", f[0], 1)            # shard 0, which did answer the close
        eq((r.status, r.error), (pb.OK, ""), "vote on shard 0 after the failed close")
        acked = {1: [], 2: []}
        acked[r.vote_ack.cycle].append(("a2", f[0]))
        cl.start_shard(1)
        r = c.vote("a2", f[1], 1)
        eq((r.status, r.error), (pb.OK, ""), "vote on shard 1 after its restart")
        acked[r.vote_ack.cycle].append(("a2", f[1]))
        close(cl, 1)
    rl1, _ = ranked(cl, "1")
    # The model ranks ties "older first" by the order features are added,
    # so add them as A5 orders them: by creation time, then by id -- not in
    # shard order, which need not be either.
    created = {fid: shard_feature(cl, fid).feature.created_ms for fid in f}
    m1 = Model()
    for fid in sorted(f, key=lambda x: (created[x], x)):
        m1.add_feature(fid, model.meta[fid][0])
        m1.apply("a1", fid, 1)
    for user, fid in acked[1]:
        m1.apply(user, fid, 1)
    check_list(rl1, m1, "cycle 1 (votes acknowledged with cycle 1: %r, with 2: %r)" %
               (acked[1], acked[2]), prev={})
    cl.stop()


@test(timeout=60)
def test_close_retried_after_a_publish_restart():
    """A failed close leaves shard 0 closed and shard 1 not; publish restarts
    (forgetting what shard 0 answered) and a vote lands on shard 0 in cycle
    2.  The retried close must still give cycle 1 as it was when shard 0
    closed it: shard 0 answers the standings it froze then, not the ones of
    now (A5)."""
    cl = Cluster(shards=NSHARDS, publish_args=["--shard-timeout-ms", "1000"]).start()
    model = Model()
    with cl.client() as c:
        f = submit_until(c, model, lambda o: [o[0][0], o[1][0]] if all(o.values()) else None,
                         NSHARDS, "Restarted close")
        decline_rest(cl, model, f)
        for fid in f:
            vote(c, model, "a1", fid, 1, 1, "before the close")
        m1 = Model()
        created = {fid: shard_feature(cl, fid).feature.created_ms for fid in f}
        for fid in sorted(f, key=lambda x: (created[x], x)):
            m1.add_feature(fid, model.meta[fid][0])
            m1.apply("a1", fid, 1)
        cl.kill_shard(1)
        rep, _ = cl.admin(close=True)
        eq(rep.status, pb.UNAVAILABLE, "close with shard 1 down (error %r)" % rep.error)
        eq(cl.publish.stop(), 0, "publish exit status on SIGTERM")
        cl.publish.start()
        wait_until(lambda: cl.admin(cycles=True, timeout=0.5)[0].status == pb.OK, 10,
                   "publish to answer after its restart")
        vote(c, model, "a2", f[0], 1, 2, "shard 0, after it closed cycle 1")
        vote(c, model, "c1", f[0], -1, 2, "shard 0, after it closed cycle 1")
        cl.start_shard(1)
        close(cl, 1)
        rl1, _ = ranked(cl, "1")
        check_list(rl1, m1, "cycle 1 (shard 0 closed it before the publish restart)", prev={})
        # the votes of cycle 2 are in cycle 2
        close(cl, 2)
        rl2, _ = ranked(cl, "2")
        check_list(rl2, model, "cycle 2", prev=ranks_of(rl1))
    cl.stop()


@test(timeout=40)
def test_created_events_across_a_publish_restart():
    """Features created while publish is down are announced when it is back
    (its cursors are stored), and those it had announced are not again.  A
    publish without cursors (its first start on a cluster that already has
    features) announces only what is created from then on."""
    cl = Cluster(shards=NSHARDS).start()
    sub = cl.sub(topics=(b"feature",))

    def created_events(n, timeout):
        evs = []
        deadline = time.monotonic() + timeout
        while len(evs) < n:
            left = deadline - time.monotonic()
            check(left > 0, "%d created events within %.0fs, got %r" % (n, timeout, evs))
            parts = sub.recv(timeout=left)
            ev = pb.FeatureEvent()
            ev.ParseFromString(parts[1])
            eq((parts[0], ev.kind, ev.status, ev.voters), (b"feature", "created", "open", 0),
               "created event %s" % ev.feature_id)
            evs.append((ev.feature_id, ev.title))
        return evs

    with cl.client() as c:
        before = {}
        for i in range(4):
            r = c.submit("alice", "Before %d" % i, "", [])
            eq((r.status, r.error), (pb.OK, ""), "submit before")
            before[r.submitted.feature_id] = "Before %d" % i
        eq(sorted(created_events(4, 8)), sorted(before.items()), "created events before")
        eq(cl.publish.stop(), 0, "publish exit status on SIGTERM")
        during = {}
        for i in range(5):
            r = c.submit("bob", "During %d" % i, "", [])
            eq((r.status, r.error), (pb.OK, ""), "submit while publish is down")
            during[r.submitted.feature_id] = "During %d" % i
        cl.publish.start()
        eq(sorted(created_events(5, 10)), sorted(during.items()),
           "created events of the features submitted while publish was down")
        check(sub.nothing_within(2.5), "an event after the ones expected (a replay?)")

        eq(cl.publish.stop(), 0, "publish exit status on SIGTERM")
        shutil.rmtree(os.path.join(cl.dir, "publish", "events"))
        cl.publish.start()
        wait_until(lambda: cl.admin(cycles=True, timeout=0.5)[0].status == pb.OK, 10,
                   "publish to answer after its restart")
        r = c.submit("carol", "After the cursors were lost", "", [])
        eq((r.status, r.error), (pb.OK, ""), "submit after")
        eq(created_events(1, 8), [(r.submitted.feature_id, "After the cursors were lost")],
           "created events of a publish without cursors: only the new feature")
        check(sub.nothing_within(2.5), "an event after the one expected (a replay?)")
    sub.close()
    cl.stop()


if __name__ == "__main__":
    main()
