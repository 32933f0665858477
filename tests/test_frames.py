"""The A4 framing at ingest: bad frames, split and batched frames, a long
pipeline on one connection."""
import struct
import time

from harness import (Cluster, VoteModel, check, check_ranked, eq, frame, main, make_ping,
                     make_submit, make_vote, pb, pb_field_bytes, pb_field_varint, shard_of,
                     test, MAX_FRAME)

NSHARDS = 2


def expect_bad_frame(c, what):
    r = c.recv_reply()
    eq((r.request_id, r.status), (0, pb.BAD_FRAME), what + ": reply (error %r)" % r.error)
    check(r.error.strip(), what + ": BAD_FRAME without an error text")
    check(c.at_eof(), what + ": the server did not close the connection after BAD_FRAME")


def alive(c, nonce, what):
    r = c.ping(nonce)
    eq((r.status, r.pong.nonce), (pb.OK, nonce), what + ": ping on the other connection")


def features_on_both_shards(c, model, per_shard):
    owned = {s: [] for s in range(NSHARDS)}
    i = 0
    while min(len(v) for v in owned.values()) < per_shard:
        check(i < 50, "50 submits and not %d features per shard" % per_shard)
        r = c.submit("author", "Feature %d" % i)
        eq(r.status, pb.OK, "submit (error %r)" % r.error)
        fid = r.submitted.feature_id
        model.add_feature(fid, "Feature %d" % i)
        owned[shard_of(fid, NSHARDS)].append(fid)
        i += 1
    return sorted(owned[0][:per_shard] + owned[1][:per_shard], key=model.features.index)


def padded_ping(rid, nonce, total):
    """A Request{rid, ping{nonce}} padded with an unknown bytes field (number
    1000, which a proto3 decoder must skip) to exactly `total` bytes."""
    base = pb_field_varint(1, rid) + pb_field_bytes(13, pb_field_varint(1, nonce))
    for n in range(total, 0, -1):
        msg = base + pb_field_bytes(1000, b"p" * n)
        if len(msg) == total:
            return msg
    raise AssertionError("cannot pad to %d" % total)


@test(timeout=60)
def test_bad_lengths_and_garbage():
    with Cluster(shards=NSHARDS) as cl, cl.client() as other:
        alive(other, 1, "before")
        # length 0
        with cl.client() as c:
            alive(c, 2, "same connection before the bad frame")
            c.send_raw(struct.pack(">I", 0))
            expect_bad_frame(c, "length 0")
        alive(other, 3, "after length 0")
        # one past the limit: answered from the 4 header bytes alone
        for n in (MAX_FRAME + 1, 0xFFFFFFFF):
            with cl.client() as c:
                c.send_raw(struct.pack(">I", n))
                expect_bad_frame(c, "length %d (header only)" % n)
            alive(other, 4, "after length %d" % n)
        with cl.client() as c:
            c.send_raw(struct.pack(">I", MAX_FRAME + 1) + b"\0" * 1000)
            expect_bad_frame(c, "length 65537 with bytes")
        # bytes that do not decode as a Request
        garbage = {
            "wire type 7": b"\x0f\xff\xff",
            "truncated length-delimited": b"\x62\x10abc",
            "endless varint": b"\xff" * 11,
            "truncated varint": b"\x08",
            "field number 0": b"\x00\x01",
            "nested op garbage": b"\x08\x05\x5a\x05\x0a\x10abc",
        }
        for name, payload in garbage.items():
            with cl.client() as c:
                c.send_frame(payload)
                expect_bad_frame(c, "garbage (%s)" % name)
            alive(other, 5, "after garbage (%s)" % name)
        # exactly the limit is a frame like any other
        with cl.client() as c:
            payload = padded_ping(77, 12345, MAX_FRAME)
            eq(len(payload), MAX_FRAME, "padded payload length")
            c.send_frame(payload)
            r = c.recv_reply()
            eq((r.request_id, r.status, r.pong.nonce), (77, pb.OK, 12345),
               "a frame of exactly %d bytes" % MAX_FRAME)
            alive(c, 6, "after the largest frame")
        alive(other, 7, "at the end")


@test(timeout=60)
def test_split_and_batched_frames():
    with Cluster(shards=NSHARDS) as cl, cl.client() as c:
        model = VoteModel()
        f = features_on_both_shards(c, model, 1)
        # three frames, one byte per send
        data = (frame(make_ping(1, 99).SerializeToString()) +
                frame(make_vote(2, "byte-user", f[0], 1).SerializeToString()) +
                frame(make_submit(3, "byte-user", "Sent byte by byte").SerializeToString()))
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])
            time.sleep(0.002)
        got = {}
        for _ in range(3):
            r = c.recv_reply()
            got[r.request_id] = r
        eq(sorted(got), [1, 2, 3], "replies to byte-by-byte frames")
        eq((got[1].status, got[1].pong.nonce), (pb.OK, 99), "byte-by-byte ping")
        eq((got[2].status, got[2].vote_ack.feature_id, got[2].vote_ack.changed),
           (pb.OK, f[0], True), "byte-by-byte vote (error %r)" % got[2].error)
        eq(got[3].status, pb.OK, "byte-by-byte submit (error %r)" % got[3].error)
        model.apply("byte-user", f[0], 1)
        model.add_feature(got[3].submitted.feature_id, "Sent byte by byte")

        # many frames in one send: pings and votes on both shards
        reqs = []
        for i in range(200):
            rid = 1000 + i
            if i % 2:
                reqs.append(make_ping(rid, rid * 7))
            else:
                fid = f[(i // 2) % 2]
                reqs.append(make_vote(rid, "batch-%d" % i, fid, 1 if i % 4 else -1))
                model.apply("batch-%d" % i, fid, 1 if i % 4 else -1)
        c.send_raw(b"".join(frame(r.SerializeToString()) for r in reqs))
        got = {}
        for _ in reqs:
            r = c.recv_reply()
            check(r.request_id not in got, "two replies for %d" % r.request_id)
            got[r.request_id] = r
        eq(sorted(got), [r.request_id for r in reqs], "replies to one big send")
        for req in reqs:
            r = got[req.request_id]
            if req.WhichOneof("op") == "ping":
                eq((r.status, r.pong.nonce), (pb.OK, req.ping.nonce), "batched ping")
            else:
                eq((r.status, r.vote_ack.feature_id, r.vote_ack.changed),
                   (pb.OK, req.vote.feature_id, True), "batched vote %d" % req.request_id)
        # a frame whose header and payload arrive in separate sends, with the
        # next frame's header glued to the first payload
        a = frame(make_ping(5000, 1).SerializeToString())
        b = frame(make_ping(5001, 2).SerializeToString())
        c.send_raw(a[:2])
        time.sleep(0.05)
        c.send_raw(a[2:] + b[:3])
        time.sleep(0.05)
        c.send_raw(b[3:])
        got = sorted((r.request_id, r.pong.nonce) for r in (c.recv_reply(), c.recv_reply()))
        eq(got, [(5000, 1), (5001, 2)], "frames split across sends")

        rep, _ = cl.admin(ranked=("live", 0, ""))
        eq(rep.status, pb.OK, "live ranked")
        check_ranked(rep.ranked, model.ranked(), "live standings after batched votes")


@test(timeout=150)
def test_ten_thousand_pipelined_votes():
    """10 000 votes pipelined on one connection: every one acknowledged once
    with its request_id; the closed list and the offline recount agree with
    what was sent."""
    with Cluster(shards=NSHARDS) as cl, cl.client(timeout=60) as c:
        model = VoteModel()
        f = features_on_both_shards(c, model, 2)
        reqs, expect = [], {}
        rid = 1

        def add(user, fid, value, tier):
            nonlocal rid
            reqs.append(make_vote(rid, user, fid, value, tier))
            expect[rid] = (fid, model.apply(user, fid, value, tier))
            rid += 1
        tiers = ("member", "member", "member", "core", "honorary")
        # 2 000 users x 4 features, then 2 000 second votes of the same users
        # (some equal to the first: changed = false)
        for u in range(2000):
            for j, fid in enumerate(f):
                add("user-%04d" % u, fid, (1, 1, -1)[(u + j) % 3], tiers[u % 5])
        for u in range(2000):
            add("user-%04d" % u, f[u % 4], (0, -1, 1, 1)[u % 4], tiers[u % 5])
        eq(len(reqs), 10000, "requests built")
        t0 = time.monotonic()
        got = c.pipeline(reqs)
        elapsed = time.monotonic() - t0
        eq(len(got), 10000, "replies")
        bad = [(k, r.status, r.error) for k, r in got.items() if r.status != pb.OK]
        check(not bad, "%d votes not OK, first: %r" % (len(bad), bad[:5]))
        wrong = [(k, expect[k], (r.vote_ack.feature_id, r.vote_ack.changed))
                 for k, r in got.items()
                 if (r.vote_ack.feature_id, r.vote_ack.changed) != expect[k] or
                 r.vote_ack.cycle != 1]
        check(not wrong, "%d acks differ (request, want, got), first: %r" % (len(wrong), wrong[:5]))
        print("     10000 pipelined votes in %.2fs" % elapsed)

        rep, _ = cl.admin(close=True)
        eq(rep.status, pb.OK, "close (error %r)" % rep.error)
        rep, _ = cl.admin(ranked=("1", 0, ""))
        eq(rep.status, pb.OK, "ranked 1")
        check_ranked(rep.ranked, model.ranked(), "cycle 1 after 10 000 votes")
        eq(rep.ranked.total_votes, model.total_votes(), "total_votes")

        rcs = cl.stop()
        eq(rcs, {p.name: 0 for p in cl.procs}, "exit codes after SIGTERM")
        dump = model.dump()
        for i in range(NSHARDS):
            feats = [x for x in model.features if shard_of(x, NSHARDS) == i]
            votes = sum(1 for (fid, _u) in dump if shard_of(fid, NSHARDS) == i)
            p = cl.tally_tool(i, "--check")
            eq((p.returncode, p.stdout.strip()), (0, "ok features=%d votes=%d" % (len(feats), votes)),
               "canvass-tally --check on shard %d (stderr %r)" % (i, p.stderr[-500:]))


if __name__ == "__main__":
    main()
