#!/usr/bin/python3
"""Reproduces, on real processes, the first bug fuzz_frame found (see README).

A client sends a Vote carrying an unknown field numbered 0 written as the
two-byte tag 80 00.  protobuf-c 1.4 accepts it, ingest validates the vote,
and the router forwards the decoded Vote -- unknown field included -- to the
shard, where protobuf-c packs the field back as 00 00, which no decoder
accepts: the shard answers "undecodable TallyRequest", and every command
batched with it (any client's votes on that shard in the same loop turn)
is resent until its deadline and answered UNAVAILABLE.

Usage: BIN=bin /usr/bin/python3 tests/fuzz/repro_field0_vote.py
Prints what each request got and exits 1 while the bug is there, 0 once the
honest vote batched with the hostile one is answered OK (and the hostile one
gets a status of its own, not UNAVAILABLE).  Listens on 127.0.0.1 only, on
random ports; data in a temporary directory.
"""
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BIN", os.path.join(ROOT, "bin"))


def main():
    tmp = tempfile.mkdtemp(prefix="fuzz-repro-")
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", tmp,
                    os.path.join(ROOT, "proto", "canvass.proto")], check=True)
    sys.path.insert(0, tmp)
    import canvass_pb2 as pb

    port = random.randint(30000, 50000)
    procs = [subprocess.Popen([os.path.join(BIN, "canvass-tally"), "--bind",
                               "tcp://127.0.0.1:%d" % (port + 1), "--data", tmp + "/t0",
                               "--durability", "os", "--log-level", "error"]),
             subprocess.Popen([os.path.join(BIN, "canvass-ingest"), "--listen",
                               "127.0.0.1:%d" % port, "--tally", "tcp://127.0.0.1:%d" % (port + 1),
                               "--http", "off", "--log-level", "error"])]

    def frame(b):
        return struct.pack(">I", len(b)) + b

    def read_reply(s):
        def exactly(n):
            b = b""
            while len(b) < n:
                chunk = s.recv(n - len(b))
                if not chunk:
                    raise EOFError("ingest closed the connection")
                b += chunk
            return b
        r = pb.Reply()
        r.ParseFromString(exactly(struct.unpack(">I", exactly(4))[0]))
        return r

    try:
        for _ in range(100):
            try:
                s = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        s.settimeout(30)
        s.sendall(frame(pb.Request(request_id=1, submit=pb.Submit(
            user_id="alice", title="Dark mode")).SerializeToString()))
        fid = read_reply(s).submitted.feature_id
        vote = pb.Vote(user_id="mallory", feature_id=fid, value=1).SerializeToString()
        vote += b"\x80\x00\x00"  # unknown field 0, varint 0, tag in two bytes
        hostile = frame(b"\x08\x02\x5a" + bytes([len(vote)]) + vote)
        honest = frame(pb.Request(request_id=3, vote=pb.Vote(
            user_id="alice", feature_id=fid, value=1)).SerializeToString())
        t0 = time.time()
        s.sendall(hostile + honest)  # pipelined: one loop turn, one TallyRequest
        got = {}
        for _ in range(2):
            r = read_reply(s)
            got[r.request_id] = r.status
            print("request %d (%s): %s %r after %.1f s" % (
                r.request_id, "hostile" if r.request_id == 2 else "honest",
                pb.Status.Name(r.status), r.error, time.time() - t0))
        ok = got.get(3) == pb.OK and got.get(2) != pb.UNAVAILABLE
        print("fixed" if ok else "BUG: the honest vote batched with the hostile one was lost")
        return 0 if ok else 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
