"""Hostile connections at ingest (DESIGN A9 limits; issue 4): clients that
connect and never send, send half a frame and stall (slowloris), never read
their replies, or flood past --max-connections; and field abuse that the
other tests leave out (wrong wire types on known fields, thousands of
repeated fields, fields given twice, strings far over their limit).  Each
gets its status or a deadline close, everyone else keeps being served, and
ingest's descriptors, memory and budget account come back.

Covered elsewhere, not repeated here: lengths 0 / over the limit / exactly
the limit, garbage bytes, field 0 and split frames (tests/test_frames.py),
strings and tag counts just past their limits and invalid UTF-8
(tests/test_pipeline.py, tests/test_auth.py), the fuzz targets."""
import os
import socket
import struct
import threading
import time
import urllib.request

from harness import (HOST, Client, Cluster, check, eq, frame, main, make_ping, make_submit,
                     make_vote, pb, pb_field_bytes, pb_field_varint, test, wait_until)

MIB = 1 << 20


def usage(proc):
    """(open descriptors, RssAnon in KiB) of a process.  RssAnon rather than
    VmRSS: it is the heap, without the shared libraries' pages that come and
    go with the page cache."""
    fds = len(os.listdir("/proc/%d/fd" % proc.pid))
    with open("/proc/%d/status" % proc.pid) as f:
        anon = [int(x.split()[1]) for x in f if x.startswith("RssAnon:")][0]
    return fds, anon


def under_asan(proc):
    with open("/proc/%d/maps" % proc.pid) as f:
        return "libasan" in f.read()  # its quarantine holds freed memory


def log_count(proc, text):
    with open(proc.log_path, errors="replace") as f:
        return f.read().count(text)


def log_has(proc, text):
    return log_count(proc, text) > 0


def buffered(cl):
    """ingest's budget account (canvass_ingest_buffered_bytes), in bytes."""
    url = "http://%s/metrics" % cl.http_addr["ingest"]
    with urllib.request.urlopen(url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("canvass_ingest_buffered_bytes"):
                return int(float(line.split()[-1]))
    raise AssertionError("no canvass_ingest_buffered_bytes in ingest's /metrics")


def pings(n, start=1):
    return b"".join(frame(make_ping(start + i, i).SerializeToString()) for i in range(n))


def small_window_socket(port):
    """A connection whose receive buffer is small from the start, so that
    unread replies back up into ingest quickly."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((HOST, port))
    s.settimeout(0.5)
    return s


def flood_unread(s, blob):
    """Sends blob and reads nothing; stops when ingest stops reading."""
    try:
        s.sendall(blob)
    except (socket.timeout, OSError):
        pass


def closed_by_server(s, timeout=5):
    """Reads (and discards) until the end of stream: True when the server
    closed the connection within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(1 << 20):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, OSError):
        return False


def served(cl):
    with cl.client(timeout=10) as c:
        r = c.ping(99)
        return r.status == pb.OK and r.pong.nonce == 99


def a_feature(cl):
    with cl.client() as c:
        r = c.submit("author", "Hostile test feature")
        eq(r.status, pb.OK, "submit (error %r)" % r.error)
        return r.submitted.feature_id


@test(timeout=60)
def test_idle_connection_closed():
    with Cluster(shards=1, ingest_args=["--idle-ms", "600"]) as cl:
        fid = a_feature(cl)
        idle = Client(HOST, cl.ingest_port)
        busy = Client(HOST, cl.ingest_port)
        t0 = time.monotonic()
        for i in range(12):  # 2.4 s of a vote every 200 ms
            r = busy.vote("voter", fid, 1 if i % 2 == 0 else -1)
            eq(r.status, pb.OK, "the busy client's vote %d (error %r)" % (i, r.error))
            time.sleep(0.2)
        check(idle.at_eof(timeout=5), "idle connection still open")
        check(time.monotonic() - t0 >= 0.6, "closed before the idle deadline")
        eq(busy.vote("voter", fid, 0).status, pb.OK, "the busy client after the idle one closed")
        check(log_has(cl.ingest, "idle deadline"), "ingest logs the idle close")
        idle.close()
        busy.close()


def slowloris(cl, data, interval, give_up):
    """Sends data a byte per interval; returns the seconds until ingest
    closed the connection, or None if it had not after give_up seconds."""
    s = socket.create_connection((HOST, cl.ingest_port))
    t0 = time.monotonic()
    try:
        for b in data:
            try:
                s.sendall(bytes([b]))
            except OSError:
                return time.monotonic() - t0
            time.sleep(interval)
            if time.monotonic() - t0 > give_up:
                return None
            s.setblocking(False)
            try:
                if s.recv(65536) == b"":
                    return time.monotonic() - t0
            except BlockingIOError:
                pass
            except OSError:
                return time.monotonic() - t0
            finally:
                s.setblocking(True)
        return None
    finally:
        s.close()


@test(timeout=60)
def test_slowloris_closed_by_read_deadline():
    # idle-ms is long: what closes these is the read deadline alone
    with Cluster(shards=1, ingest_args=["--read-ms", "1000", "--idle-ms", "600000"]) as cl:
        fid = a_feature(cl)
        payload = make_submit(1, "slow", "x" * 150).SerializeToString()
        # a byte every 200 ms: the frame would take 31 s; every byte is
        # progress, but the deadline runs from the frame's first byte
        took = slowloris(cl, frame(payload), 0.2, 10)
        check(took is not None, "a byte every 200 ms kept the connection open for 10 s")
        check(took < 6, "slowloris closed only after %.1f s (read deadline 1 s)" % took)
        check(log_has(cl.ingest, "read deadline"), "ingest logs the read-deadline close")
        # a 60 KB frame and half of the next one, then nothing: the first is
        # answered, the half frame is closed (and meanwhile the sweep cuts
        # the reader's buffer down to the half frame)
        with cl.client() as c:
            big = pb_field_varint(1, 5) + pb_field_bytes(13, pb_field_varint(1, 5)) + \
                pb_field_bytes(1000, b"p" * 60000)  # unknown field 1000: skipped
            t0 = time.monotonic()
            c.send_raw(frame(big) + frame(payload)[:len(payload) // 2])
            r = c.recv_reply()
            eq((r.request_id, r.pong.nonce), (5, 5), "the whole frame before the half one")
            check(c.at_eof(timeout=10), "half a frame kept the connection open for 10 s")
            check(time.monotonic() - t0 >= 0.9, "closed before the read deadline")
        eq(log_count(cl.ingest, "read deadline"), 2, "read-deadline closes")
        with cl.client() as c:
            eq(c.vote("other", fid, 1).status, pb.OK, "others vote after the slow ones")


@test(timeout=120)
def test_client_that_never_reads():
    with Cluster(shards=1, durability="os",
                 ingest_args=["--write-ms", "1500", "--idle-ms", "0"]) as cl:
        fid = a_feature(cl)
        time.sleep(0.5)
        fds0, anon0 = usage(cl.ingest)
        # votes (through the shard, charged while in flight) then pings
        votes = b"".join(frame(make_vote(i + 1, "hog-%d" % (i % 500), fid, 1).SerializeToString())
                         for i in range(5000))
        blob = votes + pings(600000, start=10000)  # ~9 MB of replies, never read
        hogs = [small_window_socket(cl.ingest_port) for _ in range(3)]
        t0 = time.monotonic()
        for s in hogs:
            flood_unread(s, blob)
        _, anon_held = usage(cl.ingest)
        with cl.client(timeout=10) as c:
            eq(c.vote("reader", fid, 1).status, pb.OK, "a reading client votes while hogs hold")
        wait_until(lambda: log_count(cl.ingest, "write deadline") >= len(hogs), 30,
                   "a write-deadline close of each client that never reads")
        for s in hogs:
            check(closed_by_server(s), "a client that never read is still connected after "
                  "%.1f s" % (time.monotonic() - t0))
            s.close()
        check(served(cl), "served after the hogs were closed")
        wait_until(lambda: usage(cl.ingest)[0] <= fds0 + 2, 10, "ingest's descriptors to return")
        wait_until(lambda: buffered(cl) == 0, 10, "the budget account to return to 0")
        _, anon1 = usage(cl.ingest)
        # Bound: 3 connections x 8 MiB of unsent replies (the per-connection
        # mark) plus what one turn makes past it, well under 64 MiB; after
        # the closes the heap gives most of it back.
        if not under_asan(cl.ingest):
            check(anon_held - anon0 < 64 * 1024,
                  "ingest RssAnon grew %d KiB while the hogs held replies" % (anon_held - anon0))
            check(anon1 - anon0 < 64 * 1024, "ingest RssAnon grew %d KiB" % (anon1 - anon0))


@test(timeout=120)
def test_buffer_budget_pauses_reading():
    # 1 MiB for all clients; idle and read deadlines shorter than the pause
    args = ["--max-buffered", "1", "--write-ms", "3000", "--idle-ms", "1000",
            "--read-ms", "1000"]
    with Cluster(shards=1, ingest_args=args) as cl:
        hogs = [small_window_socket(cl.ingest_port) for _ in range(4)]
        blob = pings(300000)
        for s in hogs:
            flood_unread(s, blob)
        wait_until(lambda: log_has(cl.ingest, "over budget"), 15, "the budget to be passed")
        # A client that arrives during the pause waits: it is not read, and
        # not cut off by the idle or read deadline for bytes ingest chose
        # not to read.
        late = Client(HOST, cl.ingest_port, timeout=30)
        late.send_raw(frame(make_ping(1, 4242).SerializeToString()))
        peak = buffered(cl)
        while not log_has(cl.ingest, "reading resumed"):
            peak = max(peak, buffered(cl))
            time.sleep(0.05)
        check(peak <= MIB + 512 * 1024, "the budget account reached %d bytes (budget 1 MiB)" % peak)
        r = late.recv_reply()
        eq((r.status, r.pong.nonce), (pb.OK, 4242), "the late client's ping after the pause")
        eq(late.ping(7).pong.nonce, 7, "the late client afterwards")
        late.close()
        # (A hog may also meet the read deadline once it is read again: its
        # sendall stopped at a timeout, possibly inside a frame.)
        check(log_count(cl.ingest, "write deadline") + log_count(cl.ingest, "read deadline") >= 1,
              "the hogs were cut off")
        for s in hogs:
            s.close()
        check(served(cl), "served after the budget recovered")
        wait_until(lambda: buffered(cl) == 0, 10, "the budget account to return to 0")


@test(timeout=90)
def test_connection_flood():
    limit, extra_n = 50, 300
    with Cluster(shards=1, ingest_args=["--max-connections", str(limit)]) as cl:
        time.sleep(0.5)
        fds0, _ = usage(cl.ingest)
        keep = [Client(HOST, cl.ingest_port) for _ in range(limit)]
        for i, c in enumerate(keep):
            eq(c.ping(i).pong.nonce, i, "client %d within the limit" % i)
        # every extra connects at once, from threads
        extra, lock = [], threading.Lock()

        def connect():
            s = socket.create_connection((HOST, cl.ingest_port), timeout=10)
            with lock:
                extra.append(s)
        threads = [threading.Thread(target=connect) for _ in range(extra_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        eq(len(extra), extra_n, "connections made")
        refused = 0
        for s in extra:
            s.settimeout(10)
            try:
                head = s.recv(4, socket.MSG_WAITALL)
                if len(head) == 4:
                    (n,) = struct.unpack(">I", head)
                    r = pb.Reply()
                    r.ParseFromString(s.recv(n, socket.MSG_WAITALL))
                    if r.status == pb.UNAVAILABLE and r.error == "too many connections":
                        refused += 1
                check(closed_by_server(s), "a refused connection was left open")
            except (ConnectionResetError, socket.timeout):
                pass
        eq(refused, extra_n, "connections past the limit answered UNAVAILABLE")
        for i, c in enumerate(keep):
            eq(c.ping(1000 + i).pong.nonce, 1000 + i, "client %d after the flood" % i)
        for s in extra:
            s.close()
        for c in keep:
            c.close()
        wait_until(lambda: usage(cl.ingest)[0] <= fds0 + 2, 10, "ingest's descriptors to return")
        check(served(cl), "served after the flood")


def expect_bad_frame(c, what):
    r = c.recv_reply()
    eq((r.request_id, r.status), (0, pb.BAD_FRAME), what + " (error %r)" % r.error)
    check(c.at_eof(), what + ": connection still open after BAD_FRAME")


@test(timeout=60)
def test_field_abuse():
    with Cluster(shards=1) as cl, cl.client() as other:
        fid = a_feature(cl)
        vote = lambda user: pb_field_bytes(1, user) + pb_field_bytes(2, fid.encode()) + \
            pb_field_varint(3, 2)  # sint32 +1
        # a known field with the wrong wire type
        wrong = {
            "request_id as bytes": pb_field_bytes(1, b"12345678") + pb_field_bytes(13, b""),
            "ping as varint": pb_field_varint(1, 9) + pb_field_varint(13, 5),
            "vote.user_id as varint": pb_field_varint(1, 9) + pb_field_bytes(
                11, pb_field_varint(1, 77) + pb_field_bytes(2, fid.encode())),
            "vote.value as fixed32": pb_field_varint(1, 9) + pb_field_bytes(
                11, pb_field_bytes(1, b"u") + pb_field_bytes(2, fid.encode()) +
                bytes([3 << 3 | 5]) + b"\x02\0\0\0"),
        }
        for name, payload in wrong.items():
            with cl.client() as c:
                c.send_frame(payload)
                expect_bad_frame(c, name)
            eq(other.ping(1).pong.nonce, 1, "others after " + name)
        with cl.client() as c:
            # thousands of repeated tags in one frame: INVALID, not a crash
            r = c.request(make_submit(0, "u", "Many tags", tags=["t"] * 20000))
            eq(r.status, pb.INVALID, "20000 tags (error %r)" % r.error)
            # strings far over their limits, just under the frame limit
            r = c.request(make_vote(0, "u" * 60000, fid, 1))
            eq(r.status, pb.INVALID, "user_id of 60000 bytes (error %r)" % r.error)
            r = c.request(make_submit(0, "u", "t" * 60000))
            eq(r.status, pb.INVALID, "title of 60000 bytes (error %r)" % r.error)
            r = c.request(make_submit(0, "u", "Body", "b" * 60000))
            eq(r.status, pb.INVALID, "body of 60000 bytes (error %r)" % r.error)
            r = c.request(make_submit(0, "u", "Tag", tags=["x" * 60000]))
            eq(r.status, pb.INVALID, "a tag of 60000 bytes (error %r)" % r.error)
            # a message field given twice: proto3 merges the two (user_id
            # "second", feature and value from the first); protobuf-c keeps
            # only the last, which has no feature: INVALID.  Either way one
            # clear reply, and never a vote stored for "first".
            c.send_frame(pb_field_varint(1, 500) + pb_field_bytes(11, vote(b"first")) +
                         pb_field_bytes(11, pb_field_bytes(1, b"second")))
            r = c.recv_reply()
            eq(r.request_id, 500, "vote given twice: request_id")
            check(r.status in (pb.OK, pb.INVALID), "vote given twice: status %d (error %r)" %
                  (r.status, r.error))
            merged = r.status == pb.OK
            c.send_frame(pb_field_varint(1, 501) + pb_field_bytes(13, pb_field_varint(1, 1)) +
                         pb_field_bytes(13, pb_field_varint(1, 2)))
            r = c.recv_reply()
            eq((r.request_id, r.pong.nonce), (501, 2), "ping given twice")
            # the oneof given as two different ops: the last one is the op
            c.send_frame(pb_field_varint(1, 502) + pb_field_bytes(11, vote(b"third")) +
                         pb_field_bytes(13, pb_field_varint(1, 3)))
            r = c.recv_reply()
            eq((r.request_id, r.WhichOneof("result"), r.pong.nonce), (502, "pong", 3),
               "vote then ping in one request")
            eq(c.ping(8).pong.nonce, 8, "the same connection afterwards")
        with cl.client() as c:
            r = c.vote("second", fid, 1)
            eq((r.status, r.vote_ack.changed), (pb.OK, not merged),
               "user 'second' already had the vote given twice (merged: %s)" % merged)
            r = c.vote("first", fid, 1)
            eq((r.status, r.vote_ack.changed), (pb.OK, True), "nothing was stored for 'first'")
            r = c.vote("third", fid, 1)
            eq((r.status, r.vote_ack.changed), (pb.OK, True), "nothing was stored for 'third'")


if __name__ == "__main__":
    main()
