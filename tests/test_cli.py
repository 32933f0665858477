"""bin/canvass (DESIGN A7): the client and release-manager commands, and
`canvass up` running a whole cluster."""
import json
import os
import re
import signal
import time

from harness import (Client, HOST, Proc, VoteModel, admin_call, binary, check, clean_env, eq,
                     free_port_base, free_ports, main, make_admin, make_tmpdir, parse_csv, pb,
                     run, test, wait_until)

SHARDS = 2
# every port `canvass up --port-base P` may use with two shards (A3)
UP_OFFSETS = [0, 10, 11, 20, 21, 80, 81, 82, 83]
ID_RE = re.compile(r"\bF[0-9a-z]{1,13}\b")
CSV_HEADER = ["rank", "feature_id", "title", "score", "up", "down", "voters", "prev_rank",
              "status", "tags"]


def children_of(pid):
    """{pid: comm} of the live processes whose parent is pid."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        # comm is in parentheses and may hold spaces: split after the last ')'
        rest = st[st.rindex(")") + 2:].split()
        state, ppid = rest[0], int(rest[1])
        if ppid == pid and state not in ("Z", "X"):
            out[int(d)] = st[st.index("(") + 1:st.rindex(")")]
    return out


def proc_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] not in ("Z", "X")


class Up:
    """`canvass up` on a free port base with a temp data dir."""

    def __init__(self):
        self.base = free_port_base(UP_OFFSETS)
        self.dir = make_tmpdir("up")
        self.data = os.path.join(self.dir, "var")
        self.proc = Proc("canvass-up", [binary("canvass"), "up", "--data", self.data, "--shards",
                                        str(SHARDS), "--port-base", str(self.base)],
                         os.path.join(self.dir, "up.log"))
        self.server = "%s:%d" % (HOST, self.base)
        self.publish = "%s:%d" % (HOST, self.base + 21)
        self.rep_ep = "tcp://%s" % self.publish

    def start(self, timeout=20):
        self.proc.start()

        def ready():
            check(self.proc.alive(), "canvass up exited with %s" % self.proc.p.poll())
            with Client(HOST, self.base, timeout=2) as c:
                r = c.ping(5)
                if r.status != pb.OK or r.pong.nonce != 5:
                    return False
            rep, _ = admin_call(self.rep_ep, make_admin(cycles=True), timeout=1)
            return rep.status == pb.OK
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                if ready():
                    return self
            except AssertionError as e:
                if not self.proc.alive():
                    raise
                last = e
            except OSError as e:
                last = e
            if time.monotonic() > deadline:
                raise AssertionError("canvass up not ready after %.0fs: %r" % (timeout, last))
            time.sleep(0.1)

    def cli(self, *args, timeout=30, env=None):
        e = clean_env({"CANVASS_SERVER": self.server, "CANVASS_PUBLISH": self.publish})
        if env is not None:
            e = clean_env(env)
        return run([binary("canvass")] + list(args), timeout=timeout, env=e)


def ok(p, what):
    eq(p.returncode, 0, "%s: exit code (stdout %r, stderr %r)" % (what, p.stdout[-300:],
                                                                  p.stderr[-300:]))
    return p.stdout


def fails_one_line(p, what, must_contain=None):
    check(p.returncode != 0, "%s: exit code 0 (stdout %r)" % (what, p.stdout[-300:]))
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    eq(len(lines), 1, "%s: lines of reason on stderr (%r)" % (what, p.stderr[-500:]))
    if must_contain:
        check(must_contain in lines[0], "%s: reason %r lacks %r" % (what, lines[0], must_contain))
    return lines[0]


@test(timeout=60)
def test_help_everywhere():
    """--help on every binary and every subcommand: exit 0, usage on stdout,
    and no side effect (cycle close --help closes nothing)."""
    for b, flags in (("canvass-tally", ["--shard", "--shards", "--bind", "--data", "--durability"]),
                     ("canvass-publish", ["--tally", "--pub", "--rep", "--data", "--schedule"]),
                     ("canvass-ingest", ["--listen", "--tally", "--deadline-ms", "--resend-ms"])):
        p = run([binary(b), "--help"], timeout=10)
        out = ok(p, b + " --help")
        for fl in flags:
            check(fl in out, "%s --help does not list %s" % (b, fl))
    up = Up().start()
    subs = [[], ["submit"], ["vote"], ["ping"], ["ranked"], ["cycles"], ["cycle"],
            ["cycle", "close"], ["up"]]
    # and every command `canvass --help` lists (A7's `feature ...` once built)
    listed = ok(up.cli("--help"), "canvass --help")
    for cmd in re.findall(r"^  ([a-z][a-z-]*)\b", listed, re.M):
        if [cmd] not in subs:
            subs.append([cmd])
    if ["feature"] in subs:
        subs += [["feature", x] for x in ("show", "status", "merge", "voters")]
    for s in subs:
        p = up.cli(*(s + ["--help"]), timeout=10)
        out = ok(p, "canvass %s --help" % " ".join(s))
        check(out.strip(), "canvass %s --help printed nothing on stdout" % " ".join(s))
    rep, _ = admin_call(up.rep_ep, make_admin(cycles=True))
    eq([(x.cycle, x.state) for x in rep.cycles.cycles], [(1, "open")],
       "cycles after every --help (nothing was closed)")
    p = up.cli("ranked", "--format", "yaml")
    fails_one_line(p, "ranked --format yaml")
    p = up.cli("no-such-command")
    fails_one_line(p, "an unknown subcommand")


@test(timeout=90)
def test_up_refuses_bad_starts_and_stops_on_sigterm():
    up = Up().start()
    # a second cluster on the same ports: refused, the first one unharmed
    p = run([binary("canvass"), "up", "--data", up.data + "-2", "--shards", str(SHARDS),
             "--port-base", str(up.base)], timeout=20)
    check(p.returncode != 0, "a second canvass up on the same ports exited 0")
    check("use" in p.stderr, "no 'in use' reason from the second canvass up: %r" % p.stderr[-500:])
    ok(up.cli("ping"), "ping the first cluster after the refused second one")
    up.proc.signal(signal.SIGTERM)
    eq(up.proc.wait(20), 0, "canvass up exit code after SIGTERM")
    eq(processes_using(up.data), [], "processes left after SIGTERM")
    # the same data with another shard count: refused with the reason
    p = run([binary("canvass"), "up", "--data", up.data, "--shards", str(SHARDS + 1),
             "--port-base", str(up.base)], timeout=20)
    check(p.returncode != 0, "canvass up with another shard count exited 0")
    check("shard count mismatch" in p.stderr, "no 'shard count mismatch' in %r" % p.stderr[-800:])
    eq(processes_using(up.data), [], "processes left after the refused start")


def processes_using(path):
    """[(pid, cmdline)] of live processes whose command line mentions path."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if path in cmd and proc_alive(int(d)):
            out.append((int(d), cmd))
    return out


@test(timeout=120)
def test_up_submit_vote_close_rank():
    up = Up().start()
    children = children_of(up.proc.pid)
    names = sorted(children.values())
    eq(names, sorted(["canvass-ingest", "canvass-publish"] + ["canvass-tally"] * SHARDS),
       "children of canvass up")
    for i in range(SHARDS):
        check(os.path.isdir(os.path.join(up.data, "tally-%d" % i)), "no %s/tally-%d" % (up.data, i))

    model = VoteModel()
    ids = []
    for title, tags in (("Dark mode", ["ui"]), ("Per-app volume", []), ("Call recording", [])):
        args = ["submit", "--user", "alice", title]
        p = up.cli(*args)
        out = ok(p, "canvass submit %r" % title)
        found = ID_RE.findall(out)
        eq(len(found), 1, "one feature id in submit output %r" % out)
        ids.append(found[0])
        model.add_feature(found[0], title, [])
    # --server given as a flag instead of the environment
    p = up.cli("submit", "--user", "bob", "--server", up.server, "Gesture back",
               env={"CANVASS_PUBLISH": up.publish})
    out = ok(p, "canvass submit --server")
    ids.append(ID_RE.findall(out)[0])
    model.add_feature(ids[-1], "Gesture back", [])

    votes = [("u1", ids[0], "up"), ("u2", ids[0], "up"), ("u3", ids[0], "down"),
             ("u1", ids[1], "up"), ("u2", ids[1], "down"), ("u2", ids[1], "retract"),
             ("u1", ids[3], "down"), ("u4", ids[2], "up"), ("u5", ids[2], "up"),
             ("u6", ids[2], "up"), ("u6", ids[2], "up")]
    for user, fid, how in votes:
        ok(up.cli("vote", "--user", user, fid, how), "canvass vote %s %s %s" % (user, fid, how))
        model.apply(user, fid, {"up": 1, "down": -1, "retract": 0}[how])
    # the vote is really there: the same vote over the wire changes nothing
    with Client(HOST, up.base) as c:
        r = c.vote("u4", ids[2], 1)
        eq((r.status, r.vote_ack.changed, r.vote_ack.cycle), (pb.OK, False, 1),
           "a CLI vote seen over the wire")

    fails_one_line(up.cli("vote", "--user", "u1", "nosuch", "up"), "vote on an unknown feature",
                   "no feature 'nosuch'")
    fails_one_line(up.cli("vote", "--user", "u1", ids[0], "sideways"), "vote value 'sideways'")
    fails_one_line(up.cli("vote", "--user", "u1", "bad id!", "up"), "vote on an invalid id")
    fails_one_line(up.cli("submit", "--user", "u1", "t" * 201), "submit with a 201-byte title")
    dead = "%s:%d" % (HOST, free_ports(1)[0])
    t0 = time.monotonic()
    fails_one_line(up.cli("cycles", "--publish", dead, "--timeout", "2"),
                   "cycles with publish unreachable")
    fails_one_line(up.cli("ranked", "--publish", dead, "--timeout", "2"),
                   "ranked with publish unreachable")
    fails_one_line(up.cli("cycle", "close", "--publish", dead, "--timeout", "2"),
                   "close with publish unreachable")
    fails_one_line(up.cli("vote", "--user", "u1", ids[0], "up", "--server", dead,
                          "--timeout", "2"), "vote with ingest unreachable")
    fails_one_line(up.cli("ping", "--server", dead, "--timeout", "2"), "ping with ingest unreachable")
    check(time.monotonic() - t0 < 30, "unreachable-server errors took %.0fs (--timeout 2)" %
          (time.monotonic() - t0))
    ok(up.cli("ping"), "canvass ping")

    ok(up.cli("cycle", "close"), "canvass cycle close")
    want = model.ranked()
    p = up.cli("ranked", "--format", "json")
    j = json.loads(ok(p, "ranked --format json"))
    eq((j["cycle"], j["order"]), (1, "score"), "json cycle/order")
    got = [(e["rank"], e["feature_id"], e["score"], e["up"], e["down"], e["voters"],
            e["prev_rank"], e["status"]) for e in j["entries"]]
    eq(got, [(r["rank"], r["feature_id"], r["score"], r["up"], r["down"], r["voters"], None,
              "open") for r in want], "json entries")
    rows = parse_csv(ok(up.cli("ranked", "--cycle", "1", "--format", "csv"), "ranked csv"))
    eq(rows[0], CSV_HEADER, "csv header")
    eq([(int(x[0]), x[1], float(x[3]), int(x[4]), int(x[5]), int(x[6])) for x in rows[1:] if x],
       [(r["rank"], r["feature_id"], r["score"], r["up"], r["down"], r["voters"]) for r in want],
       "csv rows")
    table = ok(up.cli("ranked"), "ranked (table)")
    lines = [x for x in table.splitlines() if any(fid in x for fid in ids)]
    eq([ID_RE.search(x).group(0) for x in lines], [r["feature_id"] for r in want],
       "table rows in rank order")
    limited = json.loads(ok(up.cli("ranked", "--limit", "2", "--format", "json"), "ranked --limit"))
    eq([e["feature_id"] for e in limited["entries"]], [r["feature_id"] for r in want[:2]],
       "ranked --limit 2")
    live = json.loads(ok(up.cli("ranked", "--cycle", "live", "--format", "json"), "ranked live"))
    eq((live["cycle"], live["closed_at"]), (2, None), "live list cycle / closed_at")
    cyc = ok(up.cli("cycles"), "canvass cycles")
    check(re.search(r"\b1\b.*\bclosed\b", cyc) and re.search(r"\b2\b.*\bopen\b", cyc),
          "canvass cycles output: %r" % cyc)

    # a supervised child that dies is restarted (docs/OPERATIONS.md)
    tally_pids = [p for p, n in children.items() if n == "canvass-tally"]
    os.kill(tally_pids[0], signal.SIGKILL)

    def restarted():
        # one snapshot: the killed shard may still be exiting (not yet a zombie)
        tallies = [p for p, n in children_of(up.proc.pid).items() if n == "canvass-tally"]
        return len(tallies) == SHARDS and tally_pids[0] not in tallies
    wait_until(restarted, 15, "the killed shard restarted")
    deadline = time.monotonic() + 20
    for fid in ids:                    # features of both shards
        while True:
            p = up.cli("vote", "--user", "u9", fid, "up")
            if p.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        ok(p, "vote on %s after the shard came back" % fid)

    # SIGINT: exit 0, nothing left behind
    kids = children_of(up.proc.pid)
    eq(len(kids), SHARDS + 2, "children before SIGINT")
    up.proc.signal(signal.SIGINT)
    try:
        rc = up.proc.wait(20)
    except Exception:
        raise AssertionError("canvass up still running 20s after SIGINT")
    eq(rc, 0, "canvass up exit code after SIGINT")
    left = [(pid, n) for pid, n in kids.items() if proc_alive(pid)]
    eq(left, [], "children alive after canvass up exited")
    eq(processes_using(up.data), [], "processes using the data dir after canvass up exited")


if __name__ == "__main__":
    main()
