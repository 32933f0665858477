"""kill -9 under load (DESIGN A4 guarantees): every acknowledged vote
survives with its last acknowledged value, nothing is counted twice, and
each shard's counters equal a recount."""
import threading
import time

from harness import (Cluster, Loader, VoteModel, check, check_ranked, eq, main, parse_dump, pb,
                     run_loaders, shard_of, test)

NSHARDS = 2
THREADS = 4


def start_with_features(**kw):
    cl = Cluster(shards=NSHARDS, ingest_args=["--deadline-ms", "1500", "--resend-ms", "200"],
                 **kw).start()
    model = VoteModel()
    owned = {0: [], 1: []}
    with cl.client() as c:
        i = 0
        while min(len(v) for v in owned.values()) < 3:
            r = c.submit("author", "Crash feature %d" % i)
            eq(r.status, pb.OK, "submit")
            model.add_feature(r.submitted.feature_id, "Crash feature %d" % i)
            owned[shard_of(r.submitted.feature_id, NSHARDS)].append(r.submitted.feature_id)
            i += 1
    return cl, model, owned[0][:3] + owned[1][:3]


def load(cl, features, during):
    stop = threading.Event()
    loaders = [Loader(k, cl.ingest_port, features, stop) for k in range(THREADS)]
    stats = run_loaders(loaders, lambda: during(loaders))
    print("     load: %r" % stats)
    return loaders, stats


def ok_count(loaders):
    return sum(t.stats["ok"] for t in loaders)


def verify(cl, model, loaders):
    """The closed list, the stored votes and each shard's recount all equal
    what the clients were told."""
    for t in loaders:
        for (fid, user), (v, tier) in t.acked.items():
            model.apply(user, fid, v, tier)
    rep, _ = cl.admin(close=True)
    eq(rep.status, pb.OK, "close (error %r)" % rep.error)
    rep, _ = cl.admin(ranked=("latest", 0, ""))
    eq(rep.status, pb.OK, "ranked latest")
    check_ranked(rep.ranked, model.ranked(), "closed list after the crash")
    eq(rep.ranked.total_votes, model.total_votes(), "total_votes")

    rcs = cl.stop()
    eq(rcs, {p.name: 0 for p in cl.procs}, "exit codes after SIGTERM")
    dumped = {}
    for i in range(NSHARDS):
        p = cl.tally_tool(i, "--dump-votes")
        eq(p.returncode, 0, "--dump-votes on shard %d (stderr %r)" % (i, p.stderr[-300:]))
        d = parse_dump(p.stdout)
        for (fid, _u) in d:
            eq(shard_of(fid, NSHARDS), i, "shard holding votes of %s" % fid)
        dumped.update(d)
        nfeat = sum(1 for x in model.features if shard_of(x, NSHARDS) == i)
        p = cl.tally_tool(i, "--check")
        eq((p.returncode, p.stdout.strip()), (0, "ok features=%d votes=%d" % (nfeat, len(d))),
           "--check on shard %d (stderr %r)" % (i, p.stderr[-300:]))
    want = model.dump()
    missing = {k: v for k, v in want.items() if dumped.get(k) != v}
    extra = {k: v for k, v in dumped.items() if k not in want}
    check(not missing and not extra,
          "stored votes differ from the acknowledged ones: %d missing/different (first %r, "
          "stored %r), %d extra (first %r)" % (
              len(missing), list(missing.items())[:3],
              [dumped.get(k) for k in list(missing)[:3]], len(extra), list(extra.items())[:3]))


def kill_shards(cl):
    def during(loaders):
        time.sleep(1.5)
        before = ok_count(loaders)
        check(before > 0, "no vote acknowledged before the kill")
        cl.kill_shard(0)
        time.sleep(2.5)             # past ingest's --deadline-ms: UNAVAILABLE
        cl.start_shard(0)
        time.sleep(1.5)
        cl.kill_shard(1)            # and a short outage of the other shard
        cl.start_shard(1)
        time.sleep(1.5)
        check(ok_count(loaders) > before, "no vote acknowledged after the kills")
    return during


@test(timeout=150)
def test_shard_kill9_under_load():
    cl, model, features = start_with_features()
    loaders, stats = load(cl, features, kill_shards(cl))
    check(stats["unavailable"] > 0, "a shard down 2.5s with --deadline-ms 1500 gave no UNAVAILABLE")
    verify(cl, model, loaders)


@test(timeout=150)
def test_shard_kill9_under_load_durability_os():
    """--durability os: acknowledged votes still survive any process crash."""
    cl, model, features = start_with_features(durability="os")
    loaders, _ = load(cl, features, kill_shards(cl))
    verify(cl, model, loaders)


@test(timeout=150)
def test_ingest_kill9_under_load():
    """ingest is stateless: killing it drops connections, clients reconnect
    and resend, nothing is lost or counted twice."""
    cl, model, features = start_with_features()

    def during(loaders):
        time.sleep(1.5)
        before = ok_count(loaders)
        cl.ingest.kill9()
        time.sleep(0.5)
        cl.ingest.start()
        time.sleep(2)
        check(ok_count(loaders) > before, "no vote acknowledged after ingest came back")
    loaders, stats = load(cl, features, during)
    check(stats["reconnects"] >= THREADS, "clients did not reconnect: %r" % stats)
    verify(cl, model, loaders)


if __name__ == "__main__":
    main()
