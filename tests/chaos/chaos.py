"""Fault injection under load (issue 4; `make chaos`, short form in
tests/test_chaos.py).

Real processes on loopback (2 tally shards, ingest, publish) under
continuous load from client connections that retry a vote -- the same
(user, feature, value) -- on UNAVAILABLE and on a dropped connection until
it is acknowledged (harness.Loader).  At random moments (seeded) one fault:

  kill-tally    SIGKILL a shard, restart it after 0.1-1.5 s
  kill-ingest   SIGKILL ingest, restart it after 0.1-1 s
  kill-close    start a cycle close and SIGKILL publish 0-40 ms into it,
                restart it, and finish the close if it did not happen
  stop-tally    SIGSTOP a shard for longer than ingest's deadline, SIGCONT
  close         an ordinary close (so that there are closed cycles to keep)

At the end, against the clients' own record: every acknowledged vote is
stored with its last acknowledged value (lost), nothing else is stored and
each shard's counters equal a recount of its votes and the live standings
equal the record (double-counted), every closed cycle's list is the same
bytes as right after its close and the cycle numbers have no gap, every
process exits 0 on SIGTERM, and no process grew its descriptors or memory
past a bound.  One line a run:

    acked N, lost 0, double-counted 0, faults K

Run alone:  PYTHONPATH=build/gen:tests python3 tests/chaos/chaos.py --duration 300
"""
import argparse
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from harness import (Cluster, Loader, VoteModel, check, eq, parse_dump, pb,  # noqa: E402
                     shard_of, tally_standings)

DEADLINE_MS = 1500  # ingest's --deadline-ms: a shard silent this long gets UNAVAILABLE
FAULTS = ("kill-tally", "kill-ingest", "kill-close", "stop-tally", "close")


def sanitized(pid):
    """True for a process built with AddressSanitizer, whose quarantine and
    shadow memory make its RSS no measure of leaks (LeakSanitizer checks
    them at exit instead)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def proc_usage(pid):
    """(open descriptors, RssAnon KiB) of a live process."""
    fds = len(os.listdir("/proc/%d/fd" % pid))
    anon = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1])
    return fds, anon


class Chaos:
    def __init__(self, duration, seed, shards=2, clients=6, features_per_shard=4, log=print):
        self.duration = duration
        self.rng = random.Random(seed)
        self.seed = seed
        self.nshards = shards
        self.nclients = clients
        self.per_shard = features_per_shard
        self.log = log
        self.faults = {f: 0 for f in FAULTS}
        self.closed = {}  # cycle -> RankedList bytes as right after its close
        self.usage = {}   # process name -> (fds, anon KiB) after its last (re)start
        self.cl = None

    # ---- setup ---------------------------------------------------------------

    def start(self):
        self.cl = Cluster(shards=self.nshards,
                          ingest_args=["--deadline-ms", str(DEADLINE_MS), "--resend-ms", "200"])
        self.cl.start()
        self.model = VoteModel()
        owned = {s: [] for s in range(self.nshards)}
        with self.cl.client() as c:
            i = 0
            while min(len(v) for v in owned.values()) < self.per_shard:
                r = c.submit("author", "Chaos feature %d" % i)
                eq(r.status, pb.OK, "submit (error %r)" % r.error)
                self.model.add_feature(r.submitted.feature_id, "Chaos feature %d" % i)
                owned[shard_of(r.submitted.feature_id, self.nshards)].append(
                    r.submitted.feature_id)
                i += 1
        self.features = [f for s in owned for f in owned[s][:self.per_shard]]
        for p in self.cl.procs:
            self.usage[p.name] = None  # sampled once load is running

    def sample(self, p):
        if p.alive():
            self.usage[p.name] = proc_usage(p.pid)

    # ---- faults ----------------------------------------------------------------

    def open_cycle(self):
        rep, _ = self.cl.admin(cycles=True, timeout=5)
        eq(rep.status, pb.OK, "cycles (error %r)" % rep.error)
        opened = [c.cycle for c in rep.cycles.cycles if c.state == "open"]
        eq(len(opened), 1, "open cycles in %r" % rep.cycles)
        return opened[0], [c.cycle for c in rep.cycles.cycles if c.state == "closed"]

    def wait_publish(self):
        deadline = time.monotonic() + 20
        while True:
            try:
                rep, _ = self.cl.admin(cycles=True, timeout=0.5)
                if rep.status == pb.OK:
                    return
            except AssertionError:
                pass
            check(time.monotonic() < deadline, "publish did not answer 20 s after a restart")
            time.sleep(0.05)

    def record_close(self, cycle):
        rep, _ = self.cl.admin(ranked=(cycle, 0, ""), timeout=10)
        eq(rep.status, pb.OK, "ranked cycle %d (error %r)" % (cycle, rep.error))
        self.closed[cycle] = rep.ranked.SerializeToString()

    def close_until_done(self, cycle):
        """Closes `cycle` (the cycle open before the fault) unless that
        already happened, and records its list."""
        deadline = time.monotonic() + 30
        while True:
            open_now, closed = self.open_cycle()
            if cycle in closed:
                break
            check(open_now == cycle, "open cycle %d, expected %d" % (open_now, cycle))
            try:
                rep, _ = self.cl.admin(close=True, timeout=15)
                if rep.status == pb.OK:
                    break
                self.log("     close of %d answered %s: %s" % (cycle, pb.Status.Name(rep.status),
                                                             rep.error))
            except AssertionError as e:
                self.log("     close of %d: %s" % (cycle, e))
            check(time.monotonic() < deadline, "cycle %d not closed within 30 s" % cycle)
            time.sleep(0.3)
        self.record_close(cycle)

    def fault(self, kind):
        cl, rng = self.cl, self.rng
        if kind == "kill-tally":
            i = rng.randrange(self.nshards)
            cl.kill_shard(i)
            time.sleep(rng.uniform(0.1, 1.5))
            cl.start_shard(i)
            self.sample(cl.tallies[i])
        elif kind == "kill-ingest":
            cl.ingest.kill9()
            time.sleep(rng.uniform(0.1, 1.0))
            cl.ingest.start()
            deadline = time.monotonic() + 20
            while True:
                try:
                    with cl.client(timeout=2) as c:
                        if c.ping(1).status == pb.OK:
                            break
                except Exception:
                    pass
                check(time.monotonic() < deadline, "ingest did not answer after a restart")
                time.sleep(0.05)
            self.sample(cl.ingest)
        elif kind == "kill-close":
            cycle, _ = self.open_cycle()
            t = threading.Thread(target=self._close_quietly, daemon=True)
            t.start()
            time.sleep(rng.uniform(0, 0.04))
            cl.publish.kill9()
            t.join(20)
            cl.publish.start()
            self.wait_publish()
            self.close_until_done(cycle)
            self.sample(cl.publish)
        elif kind == "stop-tally":
            i = rng.randrange(self.nshards)
            cl.tallies[i].signal(signal.SIGSTOP)
            time.sleep(DEADLINE_MS / 1000.0 + rng.uniform(0.5, 1.5))
            cl.tallies[i].signal(signal.SIGCONT)
        elif kind == "close":
            cycle, _ = self.open_cycle()
            self.close_until_done(cycle)
        self.faults[kind] += 1

    def _close_quietly(self):
        try:
            self.cl.admin(close=True, timeout=15)
        except AssertionError:
            pass  # publish was killed under it: no reply

    # ---- the run ---------------------------------------------------------------

    def run(self):
        self.start()
        stop = threading.Event()
        loaders = [Loader(k, self.cl.ingest_port, self.features, stop, users=40, timeout=20)
                   for k in range(self.nclients)]
        for t in loaders:
            t.start()
        try:
            time.sleep(2)
            for p in self.cl.procs:
                self.sample(p)
            base = dict(self.usage)
            end = time.monotonic() + self.duration
            # every kind at least once (in a seeded order), then at random
            plan = list(FAULTS)
            self.rng.shuffle(plan)
            while time.monotonic() < end or plan:
                time.sleep(self.rng.uniform(0.3, 2.0))
                kind = plan.pop() if plan else self.rng.choice(FAULTS)
                self.log("     %6.1fs %s" % (self.duration - (end - time.monotonic()), kind))
                self.fault(kind)
                for t in loaders:
                    check(t.is_alive(), "client %d died: %r" % (t.k, t.errors[-3:]))
            time.sleep(1)
            usage_end = {p.name: proc_usage(p.pid) for p in self.cl.procs if p.alive()}
            self.asan = {p.name: sanitized(p.pid) for p in self.cl.procs if p.alive()}
        finally:
            stop.set()
            for t in loaders:
                t.join(120)
        check(not any(t.is_alive() for t in loaders), "a client did not finish its batch")
        errors = [e for t in loaders for e in t.errors]
        # An unanswered request is what a killed ingest leaves behind; the
        # client resent it.  Anything else breaks a guarantee.
        bad = [e for e in errors if "unanswered" not in e]
        check(not bad, "%d client errors, first %r" % (len(bad), bad[:5]))
        return self.verify(loaders, base, usage_end)

    # ---- the checks -------------------------------------------------------------

    def verify(self, loaders, base, usage_end):
        cl = self.cl
        for t in loaders:
            for (fid, user), (v, tier) in t.acked.items():
                self.model.apply(user, fid, v, tier)
        acked = sum(t.stats["ok"] for t in loaders)

        # double counting, live: every shard's standings equal the record
        double = 0
        for i in range(self.nshards):
            st = tally_standings(cl.tally_eps[i], timeout=10)
            check(st is not None, "shard %d answers standings" % i)
            for f in st.standings.features:
                fid = f.feature.feature_id
                want = self.model.per_tier(fid)
                if fid in self.features and want != (list(f.up), list(f.down)):
                    double += 1
                    self.log("     standings of %s: up %r down %r, record %r" % (
                        fid, list(f.up), list(f.down), want))

        # closed cycles: the same bytes, no gap
        open_now, closed = self.open_cycle()
        eq(sorted(closed), list(range(1, open_now)), "closed cycles (open %d)" % open_now)
        changed = []
        for cycle, data in sorted(self.closed.items()):
            rep, _ = cl.admin(ranked=(cycle, 0, ""), timeout=10)
            eq(rep.status, pb.OK, "ranked cycle %d" % cycle)
            if rep.ranked.SerializeToString() != data:
                changed.append(cycle)
        check(not changed, "closed cycles whose list changed: %r" % changed)

        rcs = cl.stop(timeout=30)
        eq(rcs, {p.name: 0 for p in cl.procs}, "exit codes on SIGTERM")

        dumped = {}
        for i in range(self.nshards):
            p = cl.tally_tool(i, "--dump-votes")
            eq(p.returncode, 0, "--dump-votes shard %d (%r)" % (i, p.stderr[-300:]))
            dumped.update(parse_dump(p.stdout))
            p = cl.tally_tool(i, "--check")
            if p.returncode != 0:
                double += 1
                self.log("     --check shard %d: %s %s" % (i, p.stdout, p.stderr[-500:]))
        want_votes = self.model.dump()
        lost = sorted(k for k, v in want_votes.items() if dumped.get(k) != v)
        extra = sorted(k for k in dumped if k not in want_votes)
        double += len(extra)
        for k in lost[:5]:
            self.log("     lost %r: stored %r, acknowledged %r" % (k, dumped.get(k), want_votes[k]))
        for k in extra[:5]:
            self.log("     stored but never acknowledged: %r -> %r" % (k, dumped[k]))

        # leaks: descriptors and anonymous memory since each process's last start
        leaks = []
        for name, (fds, anon) in usage_end.items():
            b = self.usage.get(name) or base.get(name)
            if b is None:
                continue
            if fds > b[0] + self.nclients + 16:
                leaks.append("%s: %d descriptors, %d after its start" % (name, fds, b[0]))
            if anon > b[1] + 128 * 1024 and not self.asan.get(name):
                leaks.append("%s: RssAnon %d KiB, %d after its start" % (name, anon, b[1]))

        total_faults = sum(v for k, v in self.faults.items() if k != "close")
        summary = "acked %d, lost %d, double-counted %d, faults %d" % (
            acked, len(lost), double, total_faults)
        return {"summary": summary, "acked": acked, "lost": len(lost), "double": double,
                "faults": dict(self.faults), "leaks": leaks, "closed": len(self.closed),
                "stats": {k: sum(t.stats[k] for t in loaders) for k in loaders[0].stats}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=300, help="seconds of faults")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--clients", type=int, default=6)
    a = ap.parse_args()
    print("chaos: seed %d, %g s, %d shards, %d clients" % (a.seed, a.duration, a.shards,
                                                          a.clients))
    sys.stdout.flush()
    ch = Chaos(a.duration, a.seed, a.shards, a.clients,
               log=lambda s: (print(s), sys.stdout.flush()))
    try:
        r = ch.run()
    except AssertionError as e:
        print("chaos: FAILED: %s" % e)
        if ch.cl:
            print("chaos: logs in %s" % ch.cl.logdir)
            for p in ch.cl.procs:
                if p.alive():
                    p.stop()
        return 1
    print("chaos: faults %r, %d closed cycles kept, client stats %r" % (
        r["faults"], r["closed"], r["stats"]))
    for leak in r["leaks"]:
        print("chaos: leak? %s" % leak)
    print(r["summary"])
    return 0 if not (r["lost"] or r["double"] or r["leaks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
