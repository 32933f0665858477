#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/.

Usage: /usr/bin/python3 tests/fuzz/make_seeds.py [OUTDIR]   (default tests/fuzz/corpus)

The messages are built with Google's protobuf runtime from proto/canvass.proto
(compiled here with protoc --python_out into a temporary directory), so the
seeds are encoded by a second implementation, as the test vectors are.  The
client frames come from ../shared/testvectors/client-frames.tsv when it is
there.  Each seed is written under a fixed name; running the script again
rewrites the same files.  The outputs are small and committed, so that the
fuzz run needs neither protoc nor python.
"""
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T0_MS = 1767225600000  # 2026-01-01, the fake clock of fuzz_tally_request


def load_pb2():
    tmp = tempfile.mkdtemp(prefix="fuzz-seeds-")
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", tmp,
                    os.path.join(ROOT, "proto", "canvass.proto")], check=True)
    sys.path.insert(0, tmp)
    import canvass_pb2  # noqa: E402
    return canvass_pb2


pb = load_pb2()


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def stamp(ms_offset, n=0):
    return (T0_MS + ms_offset) << 22 | n


def write(outdir, target, name, data):
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- client frames (fuzz_frame) ------------------------------------------------

def client_requests():
    """(name, frame bytes) of every request test vector, plus a few more."""
    out = []
    tsv = os.path.join(ROOT, "..", "shared", "testvectors", "client-frames.tsv")
    if os.path.exists(tsv):
        for line in open(tsv):
            if line.startswith("#") or line.startswith("name\t"):
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) == 4 and cols[1] == "request":
                out.append(("tv-" + cols[0], bytes.fromhex(cols[3])))
    more = [
        ("vote-core", pb.Request(request_id=7, vote=pb.Vote(
            user_id="u\u00e9", feature_id="F-1_a", value=-1, tier="core"))),
        ("vote-token", pb.Request(request_id=8, vote=pb.Vote(
            user_id="u1", feature_id="a", value=0, user_token=b"\x01\x02"))),
        ("submit-tags", pb.Request(request_id=9, submit=pb.Submit(
            user_id="u1", title="Dark mode", body="please\n",
            tags=["ui", "theme", "a", "b", "c", "d", "e", "f"]))),
        ("hello-v1", pb.Request(request_id=10, hello=pb.Hello(
            app_key="k", client_name="forum", protocol_version=1))),
        ("vote-bad-tier", pb.Request(request_id=11, vote=pb.Vote(
            user_id="u1", feature_id="a", value=1, tier="admin"))),
    ]
    for name, msg in more:
        out.append((name, frame(msg.SerializeToString())))
    return out


def frame_seeds(outdir):
    reqs = client_requests()
    for name, f in reqs:
        write(outdir, "fuzz_frame", name, b"\x04\x00" + f)       # one read
    stream = b"".join(f for _, f in reqs)
    write(outdir, "fuzz_frame", "pipelined-whole", b"\x04\x00" + stream)
    write(outdir, "fuzz_frame", "pipelined-bytewise", b"\x00\x01" + stream)
    write(outdir, "fuzz_frame", "pipelined-random", b"\x02\x2a" + stream)
    write(outdir, "fuzz_frame", "length-zero", b"\x04\x00" + reqs[0][1] + b"\x00\x00\x00\x00")
    write(outdir, "fuzz_frame", "length-over", b"\x04\x00\x00\x01\x00\x01" + b"\x08" * 8)
    write(outdir, "fuzz_frame", "length-at-small-limit",
          b"\x0c\x10" + frame(pb.Request(request_id=1, ping=pb.Ping(nonce=1)).SerializeToString()))


# ---- tally requests (fuzz_tally_request) ------------------------------------------

def vote_cmd(seq, ms, user, feature, value, tier=""):
    return pb.ShardCmd(seq=seq, stamp=stamp(ms, seq % 4096),
                       vote=pb.Vote(user_id=user, feature_id=feature, value=value, tier=tier))


def create_cmd(seq, ms, fid, title="New feature", tags=()):
    return pb.ShardCmd(seq=seq, stamp=stamp(ms, seq % 4096), create=pb.FeatureRecord(
        feature_id=fid, title=title, body="why", tags=list(tags), author="u1", status="open"))


def treq(corr, **op):
    return frame(pb.TallyRequest(corr=corr, **op).SerializeToString())


TURN = struct.pack(">I", 0)


def tally_request_seeds(outdir):
    votes = pb.CmdBatch(cmds=[
        vote_cmd(1, 10, "u1", "a", 1), vote_cmd(2, 11, "u2", "a", -1, "core"),
        vote_cmd(3, 12, "u3", "b", 1, "honorary"), vote_cmd(4, 13, "u1", "a", 0),
        vote_cmd(5, 14, "u1", "c", 1, "member")])
    write(outdir, "fuzz_tally_request", "votes",
          treq(1, batch=votes) + TURN + treq(2, standings=pb.StandingsQuery()))
    write(outdir, "fuzz_tally_request", "create-vote-close",
          treq(1, batch=pb.CmdBatch(cmds=[create_cmd(1, 5, "x", tags=["ui"]),
                                          vote_cmd(2, 6, "u1", "x", 1),
                                          vote_cmd(3, 7, "u2", "x", 1, "core")]))
          + treq(2, set_status=pb.SetStatus(feature_id="x", status="planned"))
          + TURN + treq(3, close=pb.CloseCycle(cycle=1, opened_at_ms=T0_MS))
          + treq(4, standings=pb.StandingsQuery()))
    write(outdir, "fuzz_tally_request", "ship-then-vote",
          treq(1, batch=votes) + TURN
          + treq(2, set_status=pb.SetStatus(feature_id="b", status="shipped", release="v1.2"))
          + TURN + treq(3, batch=pb.CmdBatch(cmds=[vote_cmd(9, 40, "u9", "b", 1)]))
          + treq(4, feature=pb.FeatureQuery(feature_id="b"))
          + treq(5, voters=pb.VotersQuery(feature_id="a", limit=2))
          + TURN + treq(6, set_status=pb.SetStatus(feature_id="b", status="open")))
    moved = [pb.Voter(user_id="u3", value=1, tier="honorary", stamp=stamp(12, 3)),
             pb.Voter(user_id="u4", value=-1, tier="member", stamp=stamp(15, 1))]
    write(outdir, "fuzz_tally_request", "merge",
          treq(1, batch=votes) + TURN
          + treq(2, merge_out=pb.MergeOut(src="b", dst="a", at_ms=T0_MS + 20))
          + TURN + treq(3, merge_in=pb.MergeIn(dst="a", src="b", votes=moved))
          + TURN + treq(4, batch=pb.CmdBatch(cmds=[vote_cmd(11, 50, "u5", "b", 1)]))
          + treq(5, voters=pb.VotersQuery(feature_id="a")))
    write(outdir, "fuzz_tally_request", "refused",
          treq(1, batch=pb.CmdBatch(cmds=[
              vote_cmd(1, 1, "", "a", 1), vote_cmd(2, 2, "u1", "a b", 1),
              vote_cmd(3, 3, "u1", "a", 2), vote_cmd(4, 4, "u1", "a", 1, "admin"),
              pb.ShardCmd(seq=5, stamp=0, vote=pb.Vote(user_id="u1", feature_id="a", value=1)),
              vote_cmd(6, 6, "u1", "nope", 1), pb.ShardCmd(seq=7, stamp=stamp(7)),
              create_cmd(8, 8, "bad id!")]))
          + treq(2, set_status=pb.SetStatus(feature_id="a", status="merged"))
          + treq(3, set_status=pb.SetStatus(feature_id="a", status="sideways"))
          + treq(4, merge_out=pb.MergeOut(src="a", dst="a"))
          + treq(5, close=pb.CloseCycle(cycle=2**64 - 1))
          + treq(6))


# ---- release-manager requests (fuzz_admin_request) ------------------------------

def areq(**op):
    return frame(pb.AdminRequest(**op).SerializeToString())


def admin_request_seeds(outdir):
    t = "fuzz_admin_request"
    write(outdir, t, "ranked-live", areq(ranked=pb.RankedQuery(cycle="live")))
    write(outdir, t, "close-ranked", areq(close=pb.CloseNow())
          + areq(ranked=pb.RankedQuery(cycle="latest", limit=2))
          + areq(ranked=pb.RankedQuery(cycle="1", order="wilson"))
          + areq(ranked=pb.RankedQuery(cycle="1", order="trending"))
          + areq(cycles=pb.CyclesQuery()))
    write(outdir, t, "show", areq(feature_show=pb.FeatureShow(feature_id="a")))
    write(outdir, t, "status", areq(feature_status=pb.FeatureStatus(
        feature_id="b", status="shipped", release="2026.11.27"))
          + areq(feature_status=pb.FeatureStatus(feature_id="b", status="open"))
          + areq(feature_show=pb.FeatureShow(feature_id="b")))
    write(outdir, t, "merge", areq(feature_merge=pb.FeatureMerge(src="c", dst="a"))
          + areq(feature_merge=pb.FeatureMerge(src="b", dst="d"))
          + areq(feature_voters=pb.VotersQuery(feature_id="a"))
          + areq(features=pb.FeatureList()))
    write(outdir, t, "voters", areq(feature_voters=pb.VotersQuery(feature_id="d", after="u1",
                                                                   limit=1)))
    write(outdir, t, "refused", areq(ranked=pb.RankedQuery(cycle="x", order="y"))
          + areq(feature_show=pb.FeatureShow(feature_id="no such"))
          + areq(feature_status=pb.FeatureStatus(feature_id="a", status="merged"))
          + areq(feature_merge=pb.FeatureMerge(src="a", dst="a"))
          + areq(app_key="k"))


# ---- shard replies (fuzz_tally_reply) -----------------------------------------------

def standing(fid, status="open", up=(1, 0, 0), down=(0, 0, 0), voters=1, title="Feature"):
    return pb.FeatureStanding(
        feature=pb.FeatureRecord(feature_id=fid, title=title, status=status, tags=["ui"],
                                 created_ms=T0_MS, author="u1",
                                 history=[pb.StatusChange(status="open", at_ms=T0_MS)]),
        up=list(up), down=list(down), voters=voters, trend=[0.5, 0.0, 1.0])


def trep(**kw):
    return frame(pb.TallyReply(corr=1, **kw).SerializeToString())


def tally_reply_seeds(outdir):
    t = "fuzz_tally_reply"
    st = pb.Standings(shard=0, cycle=2, at_ms=T0_MS, features=[
        standing("a", up=(3, 1, 0), voters=4), standing("b", "planned", down=(1, 0, 1)),
        standing("x", "shipped")])
    st1 = pb.Standings(shard=1, cycle=2, at_ms=T0_MS, features=[standing("c", "in_progress")])
    for action, name in ((0, "live"), (1, "close"), (7, "close-trending")):
        write(outdir, t, "standings-" + name, bytes([action]) + trep(standings=st)
              + trep(standings=st1))
    write(outdir, t, "show", b"\x02" + trep(feature=standing("a", up=(1, 2, 3))) +
          trep(standings=st) + trep(standings=st1))
    write(outdir, t, "status", b"\x03" + trep(feature=standing("b", "shipped")))
    write(outdir, t, "merge", b"\x04" + trep(feature=standing("c")) + trep(feature=standing("a"))
          + trep(merge=pb.MergeResult(src="c", dst="a", votes=[
              pb.Voter(user_id="u1", value=1, tier="core", stamp=5)]))
          + trep(merge=pb.MergeResult(src="c", dst="a", moved=1)))
    write(outdir, t, "voters", b"\x05" + trep(voters=pb.VoterPage(
        feature_id="d", voters=[pb.Voter(user_id="u1", value=-1, tier="honorary")],
        next_after="u1", total=3)))
    write(outdir, t, "features", b"\x06" + trep(standings=st) + trep(standings=st1))
    write(outdir, t, "errors", b"\x00" + trep(status=pb.UNAVAILABLE, error="busy")
          + trep(status=pb.INTERNAL))
    write(outdir, t, "raw-acks", b"\x80" + trep(acks=pb.AckBatch(acks=[
        pb.ShardAck(seq=1, status=pb.NOT_FOUND, error="no feature 'z'")])))


def ingest_reply_seeds(outdir):
    t = "fuzz_ingest_reply"
    ok = [pb.ShardAck(seq=i, status=pb.OK, feature_id="a", changed=True, cycle=1)
          for i in range(4)]
    write(outdir, t, "acks", b"\x00" + trep(acks=pb.AckBatch(acks=ok)))
    write(outdir, t, "refusals", b"\x00" + trep(acks=pb.AckBatch(acks=[
        pb.ShardAck(seq=0, status=pb.NOT_FOUND, error="no feature 'a'"),
        pb.ShardAck(seq=1, status=pb.CLOSED, error="feature 'a' is shipped"),
        pb.ShardAck(seq=2, status=42),
        pb.ShardAck(seq=3, status=pb.INVALID)])))
    write(outdir, t, "redirect", b"\x00" + trep(acks=pb.AckBatch(acks=[
        pb.ShardAck(seq=0, status=pb.OK, feature_id="b", redirect_to="b"),
        pb.ShardAck(seq=0, status=pb.OK, feature_id="a")]))
          + trep(acks=pb.AckBatch(acks=[pb.ShardAck(seq=0, status=pb.OK, redirect_to="c")])))
    write(outdir, t, "foreign", b"\x80" + trep(acks=pb.AckBatch(acks=[
        pb.ShardAck(seq=1000, status=pb.OK)])) + trep(status=pb.UNAVAILABLE, error="busy")
          + trep(standings=pb.Standings()))


# ---- HTTP (fuzz_http) -------------------------------------------------------------

def http(method, path, body=None, headers=(), last=True):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"] + list(headers)
    if body is not None:
        lines += ["Content-Type: application/json", "Content-Length: %d" % len(body)]
    if last:  # the server then closes, which ends the exchange at once
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n" + (body or "")).encode()


def http_seeds(outdir):
    t = "fuzz_http"
    write(outdir, t, "ranked-live", http("GET", "/v1/ranked?cycle=live&limit=2&order=wilson"))
    write(outdir, t, "ranked-csv", http("GET", "/v1/ranked?cycle=live&format=csv"))
    write(outdir, t, "close-ranked", http("POST", "/v1/cycles/close", last=False)
          + http("GET", "/v1/ranked?cycle=latest&order=trending", last=False)
          + http("GET", "/v1/cycles"))
    write(outdir, t, "features", http("GET", "/v1/features", last=False)
          + http("GET", "/v1/features/a"))
    write(outdir, t, "status", http("POST", "/v1/features/b/status",
                                    '{"status": "shipped", "release": "2026.11.27"}',
                                    ["Authorization: Bearer key1"]))
    write(outdir, t, "merge", http("POST", "/v1/features/c/merge", '{"into": "a"}', last=False)
          + http("GET", "/v1/features/a/voters?after=u1&limit=1"))
    write(outdir, t, "probes", http("GET", "/healthz", last=False)
          + http("HEAD", "/readyz", last=False) + http("GET", "/metrics"))
    write(outdir, t, "refused", http("DELETE", "/v1/cycles", last=False)
          + http("GET", "/v1/ranked?limit=x&cycle=%ff", last=False)
          + http("POST", "/v1/features/a/status", '{"status": 1, "x": "y"}', last=False)
          + http("GET", "/v1/features/no%20such/voters", last=False)
          + http("GET", "/nowhere"))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fuzz", "corpus")
    frame_seeds(outdir)
    tally_request_seeds(outdir)
    admin_request_seeds(outdir)
    tally_reply_seeds(outdir)
    http_seeds(outdir)
    ingest_reply_seeds(outdir)


if __name__ == "__main__":
    main()
