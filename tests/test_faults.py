"""Faults and hostile input around the services: a close while a shard is
down, garbage on the internal sockets and the admin API, clients that go
away or half-close (DESIGN A4 "never a crash, a hang or a silently dropped
request", A5)."""
import signal
import socket
import time

import zmq

from harness import (ZCTX, Client, Cluster, HOST, VoteModel, check, check_ranked,
                     check_shard_standings, eq, frame, main, make_ping, make_vote, parse_dump, pb,
                     shard_of, tally_standings, test)

NSHARDS = 2


def features(c, model, per_shard):
    owned = {s: [] for s in range(NSHARDS)}
    i = 0
    while min(len(v) for v in owned.values()) < per_shard:
        check(i < 60, "60 submits and not %d features per shard" % per_shard)
        r = c.submit("author", "Fault feature %d" % i, tags=["f"])
        eq(r.status, pb.OK, "submit (error %r)" % r.error)
        model.add_feature(r.submitted.feature_id, "Fault feature %d" % i, ["f"])
        owned[shard_of(r.submitted.feature_id, NSHARDS)].append(r.submitted.feature_id)
        i += 1
    return sorted(owned[0][:per_shard] + owned[1][:per_shard], key=model.features.index)


def cycles(cl):
    rep, _ = cl.admin(cycles=True)
    eq(rep.status, pb.OK, "cycles (error %r)" % rep.error)
    return [(x.cycle, x.state) for x in rep.cycles.cycles]


@test(timeout=90)
def test_close_with_a_shard_down_stores_nothing_partial():
    """A5: a closed list freezes the standing of every open feature.  With a
    shard down, a close must fail rather than store a list without that
    shard's features; once the shard is back, the close works."""
    cl = Cluster(shards=NSHARDS, publish_args=["--shard-timeout-ms", "2000"]).start()
    model = VoteModel()
    with cl.client() as c:
        f = features(c, model, 2)
        for i, fid in enumerate(f):
            for u in range(i + 1):
                eq(c.vote("d-%d" % u, fid, 1).status, pb.OK, "vote")
                model.apply("d-%d" % u, fid, 1)
    sub = cl.sub()
    cl.kill_shard(1)
    rep, _ = cl.admin(close=True, timeout=30)
    check(rep.status != pb.OK and rep.error,
          "close with shard 1 down answered %s" % rep)
    eq(cycles(cl), [(1, "open")], "cycles after the failed close")
    rep, _ = cl.admin(ranked=("1", 0, ""))
    check(rep.status != pb.OK, "a list for cycle 1 exists after the failed close: %s" % rep)
    check(sub.nothing_within(0.5), "a ranked list was broadcast by the failed close")

    cl.start_shard(1)
    rep, _ = cl.admin(close=True, timeout=30)
    eq((rep.status, rep.closed.cycle), (pb.OK, 1), "close after the shard came back (error %r)"
       % rep.error)
    rl, _ = sub.recv_ranked()
    check_ranked(rl, model.ranked(), "cycle 1 closed after the outage", prev={}, meta=model.meta)
    eq(cycles(cl), [(1, "closed"), (2, "open")], "cycles after the close")
    with cl.client() as c:
        for fid in f:
            r = c.vote("late", fid, 1)
            eq((r.status, r.vote_ack.cycle), (pb.OK, 2), "vote on shard %d after the close" %
               shard_of(fid, NSHARDS))
    sub.close()
    cl.stop()


@test(timeout=60)
def test_garbage_on_internal_sockets_and_admin_api():
    cl = Cluster(shards=NSHARDS).start()
    model = VoteModel()
    with cl.client() as c:
        f = features(c, model, 1)
        eq(c.vote("g", f[0], 1).status, pb.OK, "vote")
        model.apply("g", f[0], 1)

    # tally ROUTER: undecodable messages, a request without an op, a batch
    # with hostile commands; the shard keeps serving and stores nothing wrong
    d = ZCTX.socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.connect(cl.tally_eps[0])
    bad_batch = pb.TallyRequest(corr=77)
    for i, (fid, user, value) in enumerate([("../../etc", "x", 1), ("", "x", 1),
                                            (f[0], "", 1), (f[0], "y", 5)]):
        cmd = bad_batch.batch.cmds.add(seq=i + 1, stamp=1 << 40)
        cmd.vote.feature_id = fid
        cmd.vote.user_id = user
        cmd.vote.value = value
    for msg in (b"", b"\xff\xff\xff", pb.TallyRequest(corr=5).SerializeToString(),
                bad_batch.SerializeToString()):
        d.send(msg)
    time.sleep(0.5)
    d.close()
    for i in range(NSHARDS):
        check(cl.tallies[i].alive(), "tally-%d died on garbage" % i)
        check(tally_standings(cl.tally_eps[i], timeout=5) is not None,
              "tally-%d does not answer after garbage" % i)

    # publish REP: garbage and an empty request get an error reply, and the
    # socket goes on serving
    for msg, what in ((b"\xff\xff\xff", "undecodable AdminRequest"),
                      (pb.AdminRequest().SerializeToString(), "AdminRequest without an op")):
        s = ZCTX.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(cl.rep_ep)
        s.send(msg)
        check(s.poll(5000), "no reply to an %s" % what)
        rep = pb.AdminReply()
        rep.ParseFromString(s.recv())
        s.close()
        check(rep.status != pb.OK and rep.error, "%s answered %s" % (what, rep))
        eq(cycles(cl), [(1, "open")], "cycles after an %s" % what)

    rep, _ = cl.admin(ranked=("live", 0, ""))
    check_ranked(rep.ranked, model.ranked(), "standings after the garbage")
    cl.stop()


@test(timeout=60)
def test_clients_that_go_away_or_half_close():
    cl = Cluster(shards=NSHARDS).start()
    model = VoteModel()
    with cl.client() as c:
        f = features(c, model, 1)
    # clients that send a burst and vanish without reading
    for k in range(5):
        s = socket.create_connection((HOST, cl.ingest_port))
        s.sendall(b"".join(frame(make_vote(i + 1, "gone-%d-%d" % (k, i), f[i % 2], 1)
                                 .SerializeToString()) for i in range(2000)))
        if k % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # RST
        s.close()
    # a client that half-closes after its requests still gets every reply
    with cl.client() as c:
        reqs = [make_vote(i + 1, "half-%d" % i, f[i % 2], 1) for i in range(50)]
        reqs.append(make_ping(51, 5151))
        c.send_raw(b"".join(frame(r.SerializeToString()) for r in reqs))
        c.sock.shutdown(socket.SHUT_WR)
        got = {}
        for _ in reqs:
            r = c.recv_reply()
            got[r.request_id] = r
        eq(sorted(got), list(range(1, 52)), "replies after a half-close")
        check(all(r.status == pb.OK for r in got.values()), "all OK after a half-close")
        eq(got[51].pong.nonce, 5151, "pong after a half-close")
        check(c.at_eof(), "the server did not close a half-closed connection when done")
    # extreme ids are echoed exactly
    with cl.client() as c:
        big = (1 << 64) - 1
        r = c.request(make_ping(big, big))
        eq((r.request_id, r.pong.nonce), (big, big), "largest request_id and nonce")
        r = c.request(make_vote(1 << 63, "big", f[0], 1))
        eq((r.request_id, r.status), (1 << 63, pb.OK), "request_id 2^63")
    # many connections at once
    conns = [Client(HOST, cl.ingest_port) for _ in range(150)]
    try:
        for i, c in enumerate(conns):
            c.send_frame(make_ping(i + 1, i * 3).SerializeToString())
        for i, c in enumerate(conns):
            r = c.recv_reply()
            eq((r.request_id, r.pong.nonce), (i + 1, i * 3), "ping on connection %d" % i)
    finally:
        for c in conns:
            c.close()
    check(cl.ingest.alive(), "ingest died")
    # the vanished clients' votes: each one either committed or not, never
    # twice; every half-closed vote is there
    rep, _ = cl.admin(ranked=("live", 0, ""))
    byid = {e.feature_id: e for e in rep.ranked.entries}
    for i, fid in enumerate(f[:2]):
        e = byid[fid]
        check(e.up == e.voters and e.down == 0, "%s: up %d down %d voters %d" %
              (fid, e.up, e.down, e.voters))
        check(25 + (1 if i == 0 else 0) <= e.up <= 25 + (1 if i == 0 else 0) + 5000,
              "%s: %d up votes" % (fid, e.up))
    cl.stop()


@test(timeout=60)
def test_resends_never_undo_a_newer_vote():
    """B1: ingest resends what a shard has not acknowledged, keeping each
    command's stamp, and a shard applies a vote only if it is newer than the
    stored one.  With a shard frozen (SIGSTOP) while a client changes its
    mind several times on each pair, the copies arrive late and repeatedly,
    in one burst; the stored vote must be the last one sent."""
    cl = Cluster(shards=NSHARDS, ingest_args=["--resend-ms", "100", "--deadline-ms", "8000"])
    cl.start()
    model = VoteModel()
    with cl.client(timeout=30) as c:
        f = features(c, model, 2)
        sequences = [(1, 0, -1), (1, -1, 1, 0), (-1, 1), (0, 1, 1, -1), (1, 0), (-1, -1, 1)]
        cl.tallies[0].signal(signal.SIGSTOP)
        try:
            reqs = []
            for u in range(40):
                for j, fid in enumerate(f):
                    for v in sequences[(u + j) % len(sequences)]:
                        reqs.append(make_vote(c.rid(), "r-%d" % u, fid, v))
                        model.apply("r-%d" % u, fid, v)
            c.send_raw(b"".join(frame(r.SerializeToString()) for r in reqs))
            time.sleep(1.5)    # about 15 resends of every command to the frozen shard
        finally:
            cl.tallies[0].signal(signal.SIGCONT)
        got = {}
        for _ in reqs:
            r = c.recv_reply()
            got[r.request_id] = r
        eq(sorted(got), sorted(r.request_id for r in reqs), "one reply per vote")
        bad = [(k, r.status, r.error) for k, r in got.items() if r.status != pb.OK]
        check(not bad, "%d votes not OK after SIGCONT, first %r" % (len(bad), bad[:3]))
    check_shard_standings(cl, model, "after the resend burst")
    rep, _ = cl.admin(ranked=("live", 0, ""))
    check_ranked(rep.ranked, model.ranked(), "live list after the resend burst")
    cl.stop()
    dumped = {}
    for i in range(NSHARDS):
        p = cl.tally_tool(i, "--dump-votes")
        eq(p.returncode, 0, "--dump-votes shard %d" % i)
        dumped.update(parse_dump(p.stdout))
        p = cl.tally_tool(i, "--check")
        eq(p.returncode, 0, "--check shard %d: %r" % (i, p.stdout + p.stderr))
    eq(dumped, model.dump(), "stored votes after the resend burst")


if __name__ == "__main__":
    main()
