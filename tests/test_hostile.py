"""Hostile connections at ingest (DESIGN A9 limits; issue 4): clients that
connect and never send, send half a frame and stall (slowloris), never read
their replies, or flood past --max-connections.  Each gets a deadline close
or UNAVAILABLE, everyone else keeps being served, and ingest's descriptors
and memory come back.  (Bad bytes -- lengths, garbage, split frames -- are
tests/test_frames.py and the fuzz targets.)"""
import os
import socket
import struct
import time

from harness import (HOST, Client, Cluster, check, eq, frame, main, make_ping, make_submit, pb,
                     test, wait_until)


def usage(proc):
    fds = len(os.listdir("/proc/%d/fd" % proc.pid))
    with open("/proc/%d/status" % proc.pid) as f:
        anon = [int(x.split()[1]) for x in f if x.startswith("RssAnon:")][0]
    return fds, anon


def log_count(proc, text):
    with open(proc.log_path, errors="replace") as f:
        return f.read().count(text)


def log_has(proc, text):
    return log_count(proc, text) > 0


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


def flood_unread(s, n):
    """Sends n pings and reads nothing; stops when ingest stops reading."""
    blob = pings(n)
    try:
        s.sendall(blob)
    except (socket.timeout, OSError):
        pass


def served(cl):
    with cl.client(timeout=5) as c:
        r = c.ping(99)
        return r.status == pb.OK and r.pong.nonce == 99


@test(timeout=60)
def test_idle_connection_closed():
    with Cluster(shards=1, ingest_args=["--idle-ms", "600"]) as cl:
        idle = Client(HOST, cl.ingest_port)
        busy = Client(HOST, cl.ingest_port)
        t0 = time.monotonic()
        for i in range(12):  # 2.4 s of a ping every 200 ms
            eq(busy.ping(i).pong.nonce, i, "the busy client's ping %d" % i)
            time.sleep(0.2)
        check(idle.at_eof(timeout=0.1) or idle.at_eof(timeout=2), "idle connection still open")
        check(time.monotonic() - t0 >= 0.6, "closed before the idle deadline")
        eq(busy.ping(100).pong.nonce, 100, "the busy client after the idle one was closed")
        check(log_has(cl.ingest, "idle deadline"), "ingest logs the idle close")
        idle.close()
        busy.close()


@test(timeout=60)
def test_slowloris_closed_by_read_deadline():
    with Cluster(shards=1, ingest_args=["--read-ms", "800", "--idle-ms", "0"]) as cl:
        slow = socket.create_connection((HOST, cl.ingest_port))
        payload = make_submit(1, "slow", "x" * 150).SerializeToString()
        data = frame(payload)  # one byte every 100 ms: 16 s for the frame
        t0 = time.monotonic()
        closed = False
        for b in data:
            try:
                slow.sendall(bytes([b]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - t0 > 6:
                break
            slow.setblocking(False)
            try:
                got = slow.recv(65536)
                # complete pings get their pongs; b"" is the close
                if got == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed = True
                break
            finally:
                slow.setblocking(True)
        elapsed = time.monotonic() - t0
        check(closed, "a byte every 100 ms kept the connection open for %.1f s" % elapsed)
        check(elapsed < 4, "slowloris closed only after %.1f s (read deadline 0.8 s)" % elapsed)
        check(log_has(cl.ingest, "read deadline"), "ingest logs the read-deadline close")
        check(served(cl), "others are served")
        slow.close()


@test(timeout=90)
def test_client_that_never_reads():
    with Cluster(shards=1, ingest_args=["--write-ms", "1000", "--idle-ms", "0"]) as cl:
        fds0, anon0 = usage(cl.ingest)
        hogs = [small_window_socket(cl.ingest_port) for _ in range(3)]
        t0 = time.monotonic()
        for s in hogs:
            flood_unread(s, 600000)  # ~9 MB of pongs each, never read
        check(served(cl), "a reading client is served while the hogs hold replies")
        wait_until(lambda: log_count(cl.ingest, "write deadline") >= len(hogs), 20,
                   "a write-deadline close of each client that never reads")
        for s in hogs:  # closed: reading now reaches the end (or a reset)
            s.settimeout(5)
            gone = False
            try:
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        gone = True
                        break
            except (ConnectionResetError, socket.timeout, OSError) as e:
                gone = not isinstance(e, socket.timeout)
            check(gone, "a client that never read is still connected after %.1f s" %
                  (time.monotonic() - t0))
            s.close()
        check(served(cl), "served after the hogs were closed")
        wait_until(lambda: usage(cl.ingest)[0] <= fds0 + 2, 10, "ingest's descriptors to return")
        fds1, anon1 = usage(cl.ingest)
        with open("/proc/%d/maps" % cl.ingest.pid) as f:
            asan = "libasan" in f.read()  # its quarantine holds freed memory
        check(asan or anon1 - anon0 < 64 * 1024, "ingest RssAnon grew %d KiB" % (anon1 - anon0))


@test(timeout=90)
def test_buffer_budget_pauses_reading():
    args = ["--max-buffered", "1", "--write-ms", "1500", "--idle-ms", "0"]
    with Cluster(shards=1, ingest_args=args) as cl:
        hogs = [small_window_socket(cl.ingest_port) for _ in range(4)]
        for s in hogs:
            flood_unread(s, 300000)
        wait_until(lambda: log_has(cl.ingest, "over budget"), 15, "the budget to be passed")
        wait_until(lambda: log_has(cl.ingest, "reading resumed"), 20,
                   "reading to resume once the hogs are closed")
        check(served(cl), "served after the budget recovered")
        for s in hogs:
            s.close()


@test(timeout=90)
def test_connection_flood():
    with Cluster(shards=1, ingest_args=["--max-connections", "20"]) as cl:
        time.sleep(0.5)
        fds0, _ = usage(cl.ingest)
        keep = [Client(HOST, cl.ingest_port) for _ in range(20)]
        for i, c in enumerate(keep):
            eq(c.ping(i).pong.nonce, i, "client %d within the limit" % i)
        extra, refused = [], 0
        for _ in range(200):
            s = socket.create_connection((HOST, cl.ingest_port))
            s.settimeout(5)
            extra.append(s)
        for s in extra:
            try:
                head = s.recv(4, socket.MSG_WAITALL)
                if len(head) == 4:
                    (n,) = struct.unpack(">I", head)
                    r = pb.Reply()
                    r.ParseFromString(s.recv(n, socket.MSG_WAITALL))
                    if r.status == pb.UNAVAILABLE and r.error == "too many connections":
                        refused += 1
            except (ConnectionResetError, socket.timeout):
                pass
        eq(refused, 200, "connections past the limit answered UNAVAILABLE")
        for i, c in enumerate(keep):
            eq(c.ping(1000 + i).pong.nonce, 1000 + i, "client %d after the flood" % i)
        for s in extra:
            s.close()
        for c in keep:
            c.close()
        wait_until(lambda: usage(cl.ingest)[0] <= fds0 + 2, 10, "ingest's descriptors to return")
        check(served(cl), "served after the flood")


if __name__ == "__main__":
    main()
