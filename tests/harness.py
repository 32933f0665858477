"""Integration-test harness: real Canvass processes on loopback.

What it gives a test file (tests/test_*.py):

  * free_ports / free_port_base: ports in 20000-60000 that bind right now,
    never handed out twice in one run.
  * Cluster: N tally shards + publish + ingest as separate processes, each
    with its own ports, data in a /tmp/itest-* directory, stderr in a log
    file; start / stop (SIGTERM, then SIGKILL) / kill -9 or restart a shard.
  * Client: blocking TCP client of the A4 frame protocol, with pipelining.
  * admin_call / Sub: the publish REQ/REP API and PUB stream, with timeouts
    so a dead publish never hangs a test.
  * VoteModel: the expected state (one vote per user and feature, counts,
    score, the A5 order) to compare the services against; check_ranked and
    check_shard_standings compare a RankedList / each shard's standings
    with it.
  * Loader / run_loaders: client threads voting under faults, retrying
    UNAVAILABLE and dropped connections, recording what was acknowledged.
  * run(): short-lived commands (the CLI, offline tools).  A sanitizer
    report in any process's output fails the test (SANITIZE=... builds), and
    so does, in such a build, a process that needed SIGKILL to stop (its
    leaks went unchecked).
  * @test and main(): a small runner.  Each test runs with a timeout; it
    prints `PASS name`, `FAIL name` (with the traceback and the tail of
    every process log the test started) or `SKIP name`, then
    `RESULT passed=N failed=M`, and exits 1 when anything failed.

Environment: BUILD and BIN (as for make; relative to the repository root),
ITEST_KEEP=1 keeps every temp directory, ITEST_LOG_LINES (default 60).
"""
import csv
import io
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import zmq

import canvass_pb2 as pb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, os.environ.get("BUILD", "build"))
BIN = os.path.join(REPO, os.environ.get("BIN", "bin"))
VECTORS = os.path.join(REPO, "..", "shared", "testvectors", "client-frames.tsv")
HOST = "127.0.0.1"
MAX_FRAME = 65536
WEIGHTS = {"": 1, "member": 1, "core": 3, "honorary": 10}
TIER_INDEX = {"": 0, "member": 0, "core": 1, "honorary": 2}
FEATURE_ID_RE = re.compile(r"^F[0-9a-z]{1,13}$")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")


def sanitized_build():
    """True when BUILD was compiled with -fsanitize (its .flags stamp says
    so): then a service that must be SIGKILLed has skipped LeakSanitizer."""
    try:
        with open(os.path.join(BUILD, ".flags")) as f:
            return "-fsanitize=" in f.read()
    except OSError:
        return False


def sanitizer_lines(text):
    """The lines of text (a process's stderr or log) that start a sanitizer
    report; empty when there is none."""
    return [x for x in text.splitlines()
            if not x.startswith("====") and any(m in x for m in SANITIZER_MARKERS)]

ZCTX = zmq.Context.instance()


# ---- small helpers ---------------------------------------------------------

class SkipTest(Exception):
    pass


def check(cond, msg):
    """assert that survives python -O and says what differed."""
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: expected %r, got %r" % (what, want, got))


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception as e:  # the condition may raise until it holds
            last_exc = e
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s%s" %
                         (timeout, what, " (last error: %r)" % last_exc if last_exc else ""))


def fnv1a64(data):
    if isinstance(data, str):
        data = data.encode()
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def shard_of(feature_id, nshards):
    return fnv1a64(feature_id) % nshards


def binary(name):
    path = os.path.join(BIN, name)
    if not os.access(path, os.X_OK):
        raise AssertionError("binary %s is missing (make BUILD=... BIN=... all)" % path)
    return path


_help_cache = {}


def supports_flag(name, flag):
    """True when `name --help` lists flag (e.g. "--http"), so the harness can
    pass settings that only some builds have."""
    if name not in _help_cache:
        try:
            p = subprocess.run([binary(name), "--help"], capture_output=True, text=True,
                               timeout=10, env=clean_env())
            _help_cache[name] = p.stdout
        except (OSError, subprocess.TimeoutExpired):
            _help_cache[name] = ""
    return re.search(r"(^|\s)%s(\s|=|$)" % re.escape(flag), _help_cache[name], re.M) is not None


def clean_env(extra=None):
    """The environment for a child: no stray CANVASS_* settings from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANVASS_")}
    if extra:
        env.update(extra)
    return env


# ---- ports -----------------------------------------------------------------

_handed_out = set()
_rng = random.Random()


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, port))
    except OSError:
        return False
    finally:
        s.close()
    return True


def _port_range():
    # Stay below the kernel's ephemeral range when it leaves room, so an
    # outgoing connection can never be holding the port we pick.
    lo, hi = 20000, 60000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
        if eph_lo - 1 - lo >= 2000:
            hi = min(hi, eph_lo - 1)
    except (OSError, ValueError):
        pass
    return lo, hi


def free_port_base(offsets):
    """A port P such that P+o binds for every o in offsets; reserves them."""
    lo, hi = _port_range()
    top = max(offsets)
    for _ in range(2000):
        p = _rng.randrange(lo, hi - top)
        ports = [p + o for o in offsets]
        if any(q in _handed_out for q in ports):
            continue
        if all(_bindable(q) for q in ports):
            _handed_out.update(ports)
            return p
    raise AssertionError("no free port base found")


def free_ports(n):
    """n distinct free ports (each bound successfully just now)."""
    return [free_port_base([0]) for _ in range(n)]


# ---- processes --------------------------------------------------------------

_test_procs = []      # every Proc started during the current test
_test_dirs = []       # temp dirs made during the current test


def make_tmpdir(tag="data"):
    d = tempfile.mkdtemp(prefix="itest-%s-" % tag, dir="/tmp")
    _test_dirs.append(d)
    return d


class Proc:
    """One child process whose stdout+stderr go to an append-only log file."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env if env is not None else clean_env()
        self.p = None
        self.rc = None
        self.sigkilled_at_stop = False  # SIGTERM was not enough: no leak check ran
        _test_procs.append(self)

    def start(self):
        with open(self.log_path, "ab") as f:
            f.write(("==== %s start: %s\n" % (time.strftime("%H:%M:%S"),
                                               " ".join(self.argv))).encode())
        logf = open(self.log_path, "ab")
        try:
            # its own process group, so that whatever it leaves behind can be
            # found (and ended) by the group id
            self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf,
                                      stderr=logf, env=self.env, cwd=REPO,
                                      start_new_session=True)
        finally:
            logf.close()
        self.rc = None
        return self

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def _note(self, text):
        with open(self.log_path, "ab") as f:
            f.write(("==== %s %s\n" % (time.strftime("%H:%M:%S"), text)).encode())

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout.  Returns the exit code
        (negative = killed by that signal; 'SIGKILL' noted in the log)."""
        if self.p is None:
            return None
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self._note("did not exit %.0fs after SIGTERM: SIGKILL" % timeout)
                self.sigkilled_at_stop = True
                self.p.kill()
                self.p.wait()
        self.rc = self.p.returncode
        self._note("exit code %s" % self.rc)
        return self.rc

    def leftovers(self):
        """Live processes still in this process's group (its children that
        outlived it): [(pid, comm)]."""
        if self.p is None:
            return []
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == self.p.pid:
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            rest = st[st.rindex(")") + 2:].split()
            if int(rest[2]) == self.p.pid and rest[0] not in ("Z", "X"):
                out.append((int(d), st[st.index("(") + 1:st.rindex(")")]))
        return out

    def kill_leftovers(self):
        """Ends the leftovers (by process id), notes them in the log, and
        returns them."""
        left = self.leftovers()
        for pid, _comm in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left:
            self._note("left behind, killed: %r" % left)
        return left

    def kill9(self):
        if self.alive():
            self.p.kill()
        self.p.wait()
        self.rc = self.p.returncode
        self._note("killed with SIGKILL (test)")
        return self.rc

    def wait(self, timeout):
        self.rc = self.p.wait(timeout)
        return self.rc

    def log_tail(self, lines):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
        except OSError as e:
            return ["(no log: %s)" % e]
        return data[-lines:]


def run(argv, timeout=30, env=None, input=None):
    """Runs a short-lived command; returns CompletedProcess with text output.
    Fails on a sanitizer report in its stderr (sanitizer builds)."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       env=env if env is not None else clean_env(), input=input, cwd=REPO)
    if sanitizer_lines(p.stderr):
        raise AssertionError("sanitizer report from %s:\n%s" % (" ".join(argv), p.stderr[-3000:]))
    return p


# ---- the cluster ------------------------------------------------------------

class Cluster:
    """N tally shards + one publish + one ingest, each its own process."""

    def __init__(self, shards=2, durability=None, schedule="manual", ingest_args=(),
                 publish_args=(), tally_args=(), data=None):
        for b in ("canvass-tally", "canvass-publish", "canvass-ingest"):
            binary(b)
        self.n = shards
        self.dir = data or make_tmpdir("cluster")
        self.logdir = os.path.join(self.dir, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        ports = free_ports(shards + 3)
        self.ingest_port = ports[0]
        self.pub_port = ports[1]
        self.rep_port = ports[2]
        self.tally_ports = ports[3:]
        self.tally_eps = ["tcp://%s:%d" % (HOST, p) for p in self.tally_ports]
        self.pub_ep = "tcp://%s:%d" % (HOST, self.pub_port)
        self.rep_ep = "tcp://%s:%d" % (HOST, self.rep_port)
        self.server = "%s:%d" % (HOST, self.ingest_port)
        self.publish_addr = "%s:%d" % (HOST, self.rep_port)
        self.tallies = []
        for i in range(shards):
            argv = [binary("canvass-tally"), "--shard", str(i), "--shards", str(shards),
                    "--bind", self.tally_eps[i], "--data", self.tally_dir(i)]
            if durability:
                argv += ["--durability", durability]
            argv += list(tally_args)
            self.tallies.append(Proc("tally-%d" % i, argv, self._log("tally-%d" % i)))
        self.publish = Proc("publish", [
            binary("canvass-publish"), "--tally", ",".join(self.tally_eps), "--pub", self.pub_ep,
            "--rep", self.rep_ep, "--data", os.path.join(self.dir, "publish"),
            "--schedule", schedule] + list(publish_args), self._log("publish"))
        self.ingest = Proc("ingest", [
            binary("canvass-ingest"), "--listen", self.server, "--tally",
            ",".join(self.tally_eps)] + list(ingest_args), self._log("ingest"))
        # Services that serve HTTP (A3) get a port of their own, so that no
        # default port is shared with another cluster on this machine.
        # (Flags given later in argv, e.g. by a test, win.)
        self.http_addr = {}
        for p, b in [(t, "canvass-tally") for t in self.tallies] + [
                (self.publish, "canvass-publish"), (self.ingest, "canvass-ingest")]:
            if supports_flag(b, "--http"):
                self.http_addr[p.name] = "%s:%d" % (HOST, free_ports(1)[0])
                p.argv[1:1] = ["--http", self.http_addr[p.name]]

    def _log(self, name):
        return os.path.join(self.logdir, name + ".log")

    def tally_dir(self, i):
        return os.path.join(self.dir, "tally-%d" % i)

    @property
    def procs(self):
        return self.tallies + [self.publish, self.ingest]

    def start(self, timeout=20):
        for i in range(self.n):
            os.makedirs(self.tally_dir(i), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "publish"), exist_ok=True)
        for t in self.tallies:
            t.start()
        self.publish.start()
        self.ingest.start()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        for i in range(self.n):
            self.wait_shard(i, deadline - time.monotonic())
        self._wait(lambda: self.admin(cycles=True, timeout=0.5)[0].status == pb.OK,
                   deadline, "publish REP to answer")

        def pong():
            with self.client(timeout=2) as c:
                r = c.ping(7)
                return r.status == pb.OK and r.WhichOneof("result") == "pong" and \
                    r.pong.nonce == 7
        self._wait(pong, deadline, "ingest to answer a Ping")

    def _wait(self, pred, deadline, what):
        """Polls pred() until it is true; fails at the deadline or as soon as
        one of the cluster's processes has exited."""
        last = None
        while True:
            for p in self.procs:
                if p.p is not None and not p.alive():
                    raise AssertionError("while waiting for %s: %s exited with %s" %
                                         (what, p.name, p.p.returncode))
            try:
                if pred():
                    return
            except Exception as e:  # not up yet: connection refused, timeout
                last = e
            if time.monotonic() >= deadline:
                raise AssertionError("timed out waiting for %s (last error: %r)" % (what, last))
            time.sleep(0.05)

    def wait_shard(self, i, timeout=20):
        """Waits until shard i answers a StandingsQuery on its ROUTER."""
        deadline = time.monotonic() + max(timeout, 0.5)
        self._wait(lambda: tally_standings(self.tally_eps[i], timeout=0.5) is not None,
                   deadline, "tally-%d to answer" % i)

    def stop(self, timeout=10):
        """SIGTERM to ingest, publish, then the shards.  Returns {name: rc}."""
        rcs = {}
        for p in [self.ingest, self.publish] + self.tallies:
            rcs[p.name] = p.stop(timeout)
        return rcs

    def restart(self, timeout=20):
        rcs = self.stop()
        self.start(timeout)
        return rcs

    def kill_shard(self, i):
        return self.tallies[i].kill9()

    def start_shard(self, i, wait=True):
        self.tallies[i].start()
        if wait:
            self.wait_shard(i)

    def client(self, timeout=10):
        return Client(HOST, self.ingest_port, timeout)

    def admin(self, timeout=10, **op):
        return admin_call(self.rep_ep, make_admin(**op), timeout)

    def sub(self, topics=(b"ranked",)):
        return Sub(self.pub_ep, topics)

    def cli(self, *args, timeout=30, env=None):
        e = clean_env({"CANVASS_SERVER": self.server, "CANVASS_PUBLISH": self.publish_addr})
        if env:
            e.update(env)
        return run([binary("canvass")] + list(args), timeout=timeout, env=e)

    def tally_tool(self, i, *args, timeout=60):
        return run([binary("canvass-tally"), "--data", self.tally_dir(i)] + list(args),
                   timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        for p in self.procs:
            if p.alive():
                p.stop()


def check_shard_standings(cl, model, what):
    """Each shard holds exactly the features that hash to it (FNV-1a-64 mod
    N), with per-tier counts and voters equal to the model's."""
    for i in range(cl.n):
        rep = tally_standings(cl.tally_eps[i], timeout=5)
        check(rep is not None, "%s: tally-%d does not answer a StandingsQuery" % (what, i))
        eq(rep.status, pb.OK, "%s: tally-%d standings status" % (what, i))
        eq(rep.standings.shard, i, "%s: tally-%d standings.shard" % (what, i))
        got = {}
        for fs in rep.standings.features:
            up = list(fs.up) + [0] * (3 - len(fs.up))
            down = list(fs.down) + [0] * (3 - len(fs.down))
            got[fs.feature.feature_id] = (up, down, fs.voters)
        want = {}
        for fid in model.features:
            if shard_of(fid, cl.n) == i:
                up, down = model.per_tier(fid)
                want[fid] = (up, down, sum(up) + sum(down))
        eq(sorted(got), sorted(want), "%s: features held by tally-%d" % (what, i))
        for fid in want:
            eq(got[fid], want[fid], "%s: tally-%d standing of %s (up by tier, down by tier, "
               "voters)" % (what, i, fid))


def tally_standings(endpoint, timeout=2.0):
    """Sends a StandingsQuery straight to a shard; returns TallyReply or None."""
    s = ZCTX.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    try:
        s.connect(endpoint)
        corr = _rng.randrange(1, 1 << 62)
        req = pb.TallyRequest(corr=corr)
        req.standings.SetInParent()
        s.send(req.SerializeToString())
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not s.poll(int(left * 1000)):
                return None
            rep = pb.TallyReply()
            rep.ParseFromString(s.recv())
            if rep.corr == corr:
                return rep
    finally:
        s.close()


# ---- the client protocol -----------------------------------------------------

def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def make_vote(rid, user, feature, value, tier=""):
    r = pb.Request(request_id=rid)
    r.vote.user_id = user
    r.vote.feature_id = feature
    r.vote.value = value
    if tier:
        r.vote.tier = tier
    return r


def make_submit(rid, user, title, body="", tags=()):
    r = pb.Request(request_id=rid)
    r.submit.user_id = user
    r.submit.title = title
    r.submit.body = body
    r.submit.tags.extend(tags)
    return r


def make_ping(rid, nonce):
    r = pb.Request(request_id=rid)
    r.ping.nonce = nonce
    return r


class ConnectionClosed(Exception):
    pass


class Client:
    """A blocking client of the A4 protocol over one TCP connection."""

    def __init__(self, host, port, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.next_id = 1
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def rid(self):
        r = self.next_id
        self.next_id += 1
        return r

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.sock.sendall(frame(payload))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionClosed("server closed the connection (%d bytes buffered)"
                                       % len(self.buf))
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame_bytes(self):
        """The next whole frame, header included, exactly as received."""
        head = self._read(4)
        (n,) = struct.unpack(">I", head)
        return head + self._read(n)

    def recv_reply(self):
        raw = self.recv_frame_bytes()
        r = pb.Reply()
        r.ParseFromString(raw[4:])
        return r

    def at_eof(self, timeout=5):
        """True when the server closes the connection within timeout (and
        sends nothing more first)."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(old)
        return data == b"" and not self.buf

    def request(self, req):
        if req.request_id == 0:
            req.request_id = self.rid()
        self.send_frame(req.SerializeToString())
        rep = self.recv_reply()
        if rep.request_id != req.request_id:
            raise AssertionError("reply for request %d carries request_id %d: %s" %
                                 (req.request_id, rep.request_id, rep))
        return rep

    def vote(self, user, feature, value, tier=""):
        return self.request(make_vote(self.rid(), user, feature, value, tier))

    def submit(self, user, title, body="", tags=()):
        return self.request(make_submit(self.rid(), user, title, body, tags))

    def ping(self, nonce):
        return self.request(make_ping(self.rid(), nonce))

    def pipeline(self, reqs, chunk=256):
        """Sends every request (a sender thread writes while this thread
        reads, so neither side's buffers can deadlock) and returns
        {request_id: Reply}.  Fails on a duplicate or unknown request_id."""
        want = {}
        for r in reqs:
            if r.request_id == 0:
                r.request_id = self.rid()
            check(r.request_id not in want, "duplicate request_id %d in pipeline" % r.request_id)
            want[r.request_id] = r
        frames = [frame(r.SerializeToString()) for r in reqs]
        err = []

        def sender():
            try:
                for i in range(0, len(frames), chunk):
                    self.sock.sendall(b"".join(frames[i:i + chunk]))
            except Exception as e:  # reported by the reader's failure
                err.append(e)
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        got = {}
        try:
            while len(got) < len(want):
                rep = self.recv_reply()
                check(rep.request_id in want,
                      "reply with unknown request_id %d: %s" % (rep.request_id, rep))
                check(rep.request_id not in got, "second reply for request_id %d" %
                      rep.request_id)
                got[rep.request_id] = rep
        finally:
            t.join(5)
        if err:
            raise err[0]
        return got


def load_vectors():
    """The shared test vectors: list of dicts name, direction, message, frame (bytes)."""
    out = []
    with open(VECTORS) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cols = line.split("\t")
            if cols[0] == "name":
                continue
            out.append({"name": cols[0], "direction": cols[1], "message": cols[2],
                        "frame": bytes.fromhex(cols[3])})
    return out


# Raw protobuf encoding, for requests the Python runtime refuses to build
# (invalid UTF-8 in a string field).
def pb_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field_varint(num, n):
    return pb_varint(num << 3) + pb_varint(n)


def pb_field_bytes(num, data):
    return pb_varint(num << 3 | 2) + pb_varint(len(data)) + data


def raw_vote_request(rid, user, feature, value=1, tier=b""):
    zig = (value << 1) ^ (value >> 31)
    body = pb_field_bytes(1, user) + pb_field_bytes(2, feature) + pb_field_varint(3, zig & 0xFFFFFFFF)
    if tier:
        body += pb_field_bytes(4, tier)
    return pb_field_varint(1, rid) + pb_field_bytes(11, body)


# ---- load from client threads ------------------------------------------------

class Loader(threading.Thread):
    """One client connection voting in pipelined batches of distinct
    (user, feature) pairs, with users of its own.  A vote is retried (same
    pair, same value) after UNAVAILABLE or a dropped connection until it is
    acknowledged; the next batch starts only when the whole batch is, so the
    last acknowledged value of a pair is the last value sent for it.

    acked:   {(feature, user): (value, tier)} of the non-zero acknowledged votes
    history: [(feature, user, value, tier, ack_cycle)] in acknowledgement order
    errors:  anything that broke a guarantee (a reply that is neither OK nor
             UNAVAILABLE, a request left unanswered for `timeout` seconds)"""

    TIERS = ("member", "member", "member", "core", "honorary")

    def __init__(self, k, port, features, stop, users=30, max_batch=24, timeout=15):
        super().__init__(daemon=True)
        self.k = k
        self.port = port
        self.features = list(features)
        self.stop_ev = stop
        self.max_batch = max_batch
        self.timeout = timeout
        self.rng = random.Random(1000 + k)
        self.users = ["t%d-u%02d" % (k, i) for i in range(users)]
        self.tier = {u: self.TIERS[i % len(self.TIERS)] for i, u in enumerate(self.users)}
        self.acked = {}
        self.history = []
        self.stats = {"ok": 0, "unavailable": 0, "reconnects": 0, "batches": 0}
        self.errors = []
        self.conn = None
        self.rid = 1

    def _connect(self, deadline):
        while True:
            try:
                self.conn = Client(HOST, self.port, timeout=self.timeout)
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    raise AssertionError("loader %d cannot connect: %r" % (self.k, e))
                time.sleep(0.1)

    def _drop(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def send_batch(self, votes):
        """Sends votes [(user, feature, value)] until each one got OK."""
        pending = list(votes)
        deadline = time.monotonic() + 60
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError("loader %d: batch not acknowledged within 60s: %r" %
                                     (self.k, pending[:3]))
            if self.conn is None:
                self._connect(deadline)
                self.stats["reconnects"] += 1
            by_rid = {}
            data = []
            for v in pending:
                by_rid[self.rid] = v
                data.append(frame(make_vote(self.rid, v[0], v[1], v[2],
                                            self.tier[v[0]]).SerializeToString()))
                self.rid += 1
            retry = []
            try:
                self.conn.send_raw(b"".join(data))
                while by_rid:
                    r = self.conn.recv_reply()
                    v = by_rid.pop(r.request_id, None)
                    if v is None:
                        self.errors.append("reply for unknown request %d: %s" % (r.request_id, r))
                    elif r.status == pb.OK:
                        self._acked(v, r)
                    elif r.status == pb.UNAVAILABLE:
                        self.stats["unavailable"] += 1
                        retry.append(v)
                    else:
                        self.errors.append("vote %r: status %d error %r" % (v, r.status, r.error))
            except socket.timeout:
                self.errors.append("loader %d: %d requests unanswered after %ds" %
                                   (self.k, len(by_rid), self.timeout))
                retry.extend(by_rid.values())
                self._drop()
            except (ConnectionClosed, OSError):
                retry.extend(by_rid.values())
                self._drop()
            pending = retry
            if retry:
                time.sleep(0.05)

    def _acked(self, v, r):
        user, fid, value = v
        self.stats["ok"] += 1
        if r.vote_ack.feature_id != fid:
            self.errors.append("ack names %s for a vote on %s" % (r.vote_ack.feature_id, fid))
        tier = self.tier[user]
        if value == 0:
            self.acked.pop((fid, user), None)
        else:
            self.acked[(fid, user)] = (value, tier)
        self.history.append((fid, user, value, tier, r.vote_ack.cycle))

    def run(self):
        try:
            self._connect(time.monotonic() + 10)
            while not self.stop_ev.is_set():
                n = self.rng.randint(1, self.max_batch)
                pairs = set()
                while len(pairs) < n:
                    pairs.add((self.rng.choice(self.users), self.rng.choice(self.features)))
                self.send_batch([(u, fid, self.rng.choice((1, 1, -1, 0)))
                                 for u, fid in sorted(pairs)])
                self.stats["batches"] += 1
        except BaseException as e:  # reported by the test
            self.errors.append("loader %d died: %r" % (self.k, e))
        finally:
            self._drop()


def run_loaders(loaders, during):
    """Starts the loaders, calls during(), stops and joins them, fails on any
    loader error; returns the summed stats."""
    for t in loaders:
        t.start()
    try:
        during()
    except BaseException:
        # a failure or the test's timeout: don't wait for batches to finish
        for t in loaders:
            t.stop_ev.set()
        raise
    for t in loaders:
        t.stop_ev.set()
    for t in loaders:
        t.join(90)
    for t in loaders:
        check(not t.is_alive(), "loader %d still running" % t.k)
    errors = [e for t in loaders for e in t.errors]
    check(not errors, "%d client errors, first: %r" % (len(errors), errors[:5]))
    return {k: sum(t.stats[k] for t in loaders) for k in loaders[0].stats}


# ---- publish: admin REQ/REP and PUB ------------------------------------------

def make_admin(ranked=None, cycles=False, close=False, app_key=""):
    req = pb.AdminRequest(app_key=app_key)
    if ranked is not None:
        cycle, limit, order = ranked
        req.ranked.cycle = str(cycle) if cycle is not None else ""
        req.ranked.limit = limit or 0
        req.ranked.order = order or ""
        req.ranked.SetInParent()
    elif cycles:
        req.cycles.SetInParent()
    elif close:
        req.close.SetInParent()
    return req


def admin_call(endpoint, req, timeout=10):
    """One request on a fresh REQ socket.  Returns (AdminReply, raw bytes);
    raises AssertionError when no reply comes within timeout."""
    s = ZCTX.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    try:
        s.connect(endpoint)
        s.send(req.SerializeToString())
        if not s.poll(int(timeout * 1000)):
            raise AssertionError("no AdminReply from %s within %.1fs" % (endpoint, timeout))
        raw = s.recv()
        rep = pb.AdminReply()
        rep.ParseFromString(raw)
        return rep, raw
    finally:
        s.close()


class Sub:
    """A SUB socket on the publish stream."""

    def __init__(self, endpoint, topics=(b"ranked",)):
        self.s = ZCTX.socket(zmq.SUB)
        self.s.setsockopt(zmq.LINGER, 0)
        for t in topics:
            self.s.setsockopt(zmq.SUBSCRIBE, t)
        self.s.connect(endpoint)
        # PUB drops messages for a subscriber whose subscription has not
        # arrived yet ("slow joiner"); there is no handshake to wait for.
        time.sleep(0.4)

    def recv(self, timeout=10):
        if not self.s.poll(int(timeout * 1000)):
            raise AssertionError("no message on the PUB stream within %.1fs" % timeout)
        return self.s.recv_multipart()

    def recv_ranked(self, timeout=10):
        parts = self.recv(timeout)
        eq(len(parts), 2, "PUB message frame count")
        eq(parts[0], b"ranked", "PUB topic")
        rl = pb.RankedList()
        rl.ParseFromString(parts[1])
        return rl, parts[1]

    def nothing_within(self, timeout):
        return not self.s.poll(int(timeout * 1000))

    def close(self):
        self.s.close()


# ---- the expected state -------------------------------------------------------

class VoteModel:
    """What the store must hold: one vote per (user, feature), per A4/A5."""

    def __init__(self, weights=None):
        self.weights = weights or WEIGHTS
        self.votes = {}      # (feature, user) -> (value, tier)
        self.features = []   # feature ids, oldest first
        self.meta = {}       # feature id -> (title, tags)

    def add_feature(self, fid, title="", tags=()):
        self.features.append(fid)
        self.meta[fid] = (title, list(tags))

    def apply(self, user, feature, value, tier=""):
        """Applies a vote and returns the expected VoteAck.changed."""
        old = self.votes.get((feature, user), (0, ""))
        changed = old[0] != value
        if value == 0:
            self.votes.pop((feature, user), None)
        else:
            self.votes[(feature, user)] = (value, tier or "member")
        return changed

    def standing(self, feature):
        up = down = 0
        score = 0
        for (f, _u), (v, tier) in self.votes.items():
            if f != feature:
                continue
            if v > 0:
                up += 1
                score += self.weights[tier]
            else:
                down += 1
                score -= self.weights[tier]
        return {"up": up, "down": down, "voters": up + down, "score": float(score)}

    def per_tier(self, feature):
        """([up member, core, honorary], [down ...]) as FeatureStanding has them."""
        up, down = [0, 0, 0], [0, 0, 0]
        for (f, _u), (v, tier) in self.votes.items():
            if f == feature:
                (up if v > 0 else down)[TIER_INDEX[tier]] += 1
        return up, down

    def ranked(self, features=None):
        """Entries in A5 order (score desc, voters desc, older first)."""
        feats = features if features is not None else self.features
        age = {f: i for i, f in enumerate(self.features)}
        rows = []
        for f in feats:
            s = self.standing(f)
            s["feature_id"] = f
            rows.append(s)
        rows.sort(key=lambda r: (-r["score"], -r["voters"], age[r["feature_id"]]))
        for i, r in enumerate(rows):
            r["rank"] = i + 1
        return rows

    def total_votes(self):
        return len(self.votes)

    def dump(self):
        """{(feature, user): (value, tier)} as --dump-votes should print it."""
        return dict(self.votes)


def entry_tuple(e):
    return (e.rank, e.feature_id, e.score, e.up, e.down, e.voters)


def check_ranked(rl, expected, what, prev=None, meta=None):
    """Compares a RankedList's entries with VoteModel.ranked() rows.
    prev: {feature: rank in the previous cycle} (absent = 0)."""
    got = [entry_tuple(e) for e in rl.entries]
    want = [(r["rank"], r["feature_id"], r["score"], r["up"], r["down"], r["voters"])
            for r in expected]
    if got != want:
        lines = ["%s: ranked entries differ" % what, "  rank feature score up down voters"]
        for i in range(max(len(got), len(want))):
            g = got[i] if i < len(got) else None
            w = want[i] if i < len(want) else None
            lines.append("  %s %s" % ("  " if g == w else "!!", "got %r want %r" % (g, w)))
        raise AssertionError("\n".join(lines))
    for e in rl.entries:
        eq(e.status, "open", "%s: status of %s" % (what, e.feature_id))
        if prev is not None:
            eq(e.prev_rank, prev.get(e.feature_id, 0), "%s: prev_rank of %s" % (what, e.feature_id))
        if meta is not None:
            title, tags = meta[e.feature_id]
            eq(e.title, title, "%s: title of %s" % (what, e.feature_id))
            eq(list(e.tags), list(tags), "%s: tags of %s" % (what, e.feature_id))


def parse_dump(text):
    """--dump-votes TSV -> {(feature, user): (value, tier)}."""
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        cols = line.split("\t")
        check(len(cols) == 4, "--dump-votes line has %d columns, want 4: %r" % (len(cols), line))
        key = (cols[0], cols[1])
        check(key not in out, "--dump-votes lists %r twice" % (key,))
        out[key] = (int(cols[2]), cols[3])
    return out


def parse_csv(text):
    return list(csv.reader(io.StringIO(text)))


# ---- the runner --------------------------------------------------------------

_tests = []


class TestTimeout(Exception):
    pass


def test(fn=None, timeout=120):
    """Registers a test function; @test or @test(timeout=S)."""
    def reg(f):
        _tests.append((f.__name__, f, timeout))
        return f
    if fn is not None:
        return reg(fn)
    return reg


def _on_alarm(signum, frame):
    raise TestTimeout("test timed out")


def _stop_test_procs():
    for p in _test_procs:
        if p.alive():
            p.stop(5)
    for p in _test_procs:
        p.kill_leftovers()


def _remove_test_dirs(keep):
    if not keep:
        for d in _test_dirs:
            shutil.rmtree(d, ignore_errors=True)
    del _test_procs[:]
    del _test_dirs[:]


def _sanitizer_findings():
    """Sanitizer reports (ASan, LSan, UBSan) in the logs of the test's
    processes, so a sanitizer build fails the test that triggered one.  In a
    sanitizer build a process that ignored SIGTERM and was SIGKILLed is a
    finding too: LeakSanitizer runs at exit and so never checked it."""
    found = []
    if sanitized_build():
        found += ["%s: no exit after SIGTERM, SIGKILLed: leaks unchecked" % p.name
                  for p in _test_procs if p.sigkilled_at_stop]
    seen = set()
    for p in _test_procs:
        if p.log_path in seen:
            continue
        seen.add(p.log_path)
        found += ["%s: %s" % (os.path.basename(p.log_path), line.strip())
                  for line in sanitizer_lines("\n".join(p.log_tail(100000)))]
    return found


def _print_logs():
    lines = int(os.environ.get("ITEST_LOG_LINES", "60"))
    seen = set()
    for p in _test_procs:
        if p.log_path in seen:
            continue
        seen.add(p.log_path)
        print("---- log %s (last %d lines) ----" % (p.log_path, lines))
        for line in p.log_tail(lines):
            print("    " + line)


def main():
    only = sys.argv[1:]
    keep_all = os.environ.get("ITEST_KEEP") == "1"
    passed = failed = 0
    signal.signal(signal.SIGALRM, _on_alarm)
    for name, fn, timeout in _tests:
        if only and not any(o in name for o in only):
            continue
        t0 = time.monotonic()
        outcome, detail = "pass", ""
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                fn()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except SkipTest as e:
            outcome, detail = "skip", str(e)
        except KeyboardInterrupt:
            _stop_test_procs()
            raise
        except BaseException:  # a failure of any kind, the timeout included
            outcome, detail = "fail", traceback.format_exc()
        elapsed = time.monotonic() - t0
        try:
            _stop_test_procs()
            if outcome == "pass":
                findings = _sanitizer_findings()
                if findings:
                    outcome = "fail"
                    detail = "sanitizer reports in the process logs:\n  " + "\n  ".join(
                        findings[:20])
        except BaseException:
            outcome, detail = "fail", traceback.format_exc()
        if outcome == "pass":
            passed += 1
            print("PASS %s (%.1fs)" % (name, elapsed))
        elif outcome == "skip":
            print("SKIP %s (%s)" % (name, detail))
        else:
            failed += 1
            print("FAIL %s (%.1fs)" % (name, elapsed))
            print(detail.rstrip())
            _print_logs()
            if _test_dirs:
                print("     data kept in: %s" % " ".join(_test_dirs))
        sys.stdout.flush()
        _remove_test_dirs(keep=keep_all or outcome == "fail")
    print("RESULT passed=%d failed=%d" % (passed, failed))
    sys.stdout.flush()
    sys.exit(1 if failed else 0)
