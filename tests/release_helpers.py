"""Helpers for the issue-3 scenario tests (release managers: lifecycle,
merges, orders, HTTP): the feature admin calls over REP, the `feature`
topic of the PUB stream, direct shard queries, a vote model that knows
statuses and merges, and a small HTTP client.

Built on tests/harness.py, which this file only uses."""
import json
import math
import time
import urllib.error
import urllib.request

import zmq

from harness import (ZCTX, Cluster, VoteModel, admin_call, check, eq, pb,
                     shard_of, wait_until)

RANKED_STATUSES = ("open", "planned", "in_progress")
TIER_NAMES = ("member", "core", "honorary")


# ---- the release-manager API over REP -----------------------------------------

def admin_op(cl, op, timeout=10, app_key="", **fields):
    """One AdminRequest with oneof `op` (feature_show, feature_status,
    feature_merge, feature_voters, features, ranked, cycles, close) whose
    message gets `fields`.  Returns (AdminReply, raw bytes)."""
    req = pb.AdminRequest(app_key=app_key)
    sub = getattr(req, op)
    sub.SetInParent()
    for k, v in fields.items():
        setattr(sub, k, v)
    return admin_call(cl.rep_ep, req, timeout)


def show(cl, fid):
    rep, _ = admin_op(cl, "feature_show", feature_id=fid)
    eq((rep.status, rep.error), (pb.OK, ""), "feature_show %s" % fid)
    eq(rep.WhichOneof("result"), "feature", "feature_show %s result" % fid)
    return rep.feature


def set_status(cl, fid, status, release=""):
    rep, _ = admin_op(cl, "feature_status", feature_id=fid, status=status, release=release)
    eq((rep.status, rep.error), (pb.OK, ""), "feature_status %s %s" % (fid, status))
    return rep


def merge(cl, src, dst, timeout=10):
    rep, _ = admin_op(cl, "feature_merge", timeout=timeout, src=src, dst=dst)
    return rep


def close(cl, want_cycle):
    rep, _ = cl.admin(close=True)
    eq((rep.status, rep.error, rep.closed.cycle), (pb.OK, "", want_cycle),
       "close cycle %d" % want_cycle)
    return rep.closed


def ranked(cl, cycle="live", order="", limit=0):
    rep, raw = cl.admin(ranked=(cycle, limit, order))
    eq((rep.status, rep.error), (pb.OK, ""), "ranked %s %s" % (cycle, order or "score"))
    return rep.ranked, raw


def voter_pages(cl, fid, limit):
    """Every page of a feature's voters over REP, following next_after.
    Returns the list of VoterPage messages."""
    pages, after = [], ""
    for _ in range(1000):
        rep, _ = admin_op(cl, "feature_voters", feature_id=fid, after=after, limit=limit)
        eq((rep.status, rep.error), (pb.OK, ""), "feature_voters %s after %r" % (fid, after))
        eq(rep.WhichOneof("result"), "voters", "feature_voters result")
        p = rep.voters
        pages.append(p)
        check(len(p.voters) <= limit, "page of %d voters with limit %d" % (len(p.voters), limit))
        if not p.next_after:
            return pages
        check(p.next_after != after, "next_after %r does not move on" % after)
        after = p.next_after
    raise AssertionError("more than 1000 pages of voters")


# ---- the `feature` topic of the PUB stream ---------------------------------------

class FeatureSub:
    """A SUB socket on the `feature` topic."""

    def __init__(self, cl):
        self.s = ZCTX.socket(zmq.SUB)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.setsockopt(zmq.SUBSCRIBE, b"feature")
        self.s.connect(cl.pub_ep)
        time.sleep(0.4)  # the PUB drops what comes before the subscription arrives

    def recv(self, timeout=10):
        """The next FeatureEvent.  `created` events (if publish sends them for
        submits) are skipped: these tests are about release-manager changes."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.s.poll(int(left * 1000)):
                raise AssertionError("no FeatureEvent on the PUB stream within %.1fs" % timeout)
            parts = self.s.recv_multipart()
            eq(len(parts), 2, "PUB feature message frame count")
            eq(parts[0], b"feature", "PUB topic")
            ev = pb.FeatureEvent()
            ev.ParseFromString(parts[1])
            if ev.kind != "created":
                return ev

    def expect(self, what, **want):
        """The next event has exactly the fields in want (the others are not
        looked at); returns it."""
        ev = self.recv()
        got = {k: getattr(ev, k) for k in want}
        eq(got, want, "FeatureEvent " + what)
        return ev

    def quiet(self, seconds):
        """No (non-created) event within seconds."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.s.poll(int(left * 1000)):
                return
            parts = self.s.recv_multipart()
            ev = pb.FeatureEvent()
            ev.ParseFromString(parts[1])
            check(ev.kind == "created", "unexpected FeatureEvent: %s" % ev)

    def close(self):
        self.s.close()


# ---- straight to a shard ---------------------------------------------------------

def tally_call(endpoint, op, timeout=3.0, **fields):
    """One TallyRequest with oneof `op` straight to a shard's ROUTER;
    returns the TallyReply, or None when none came within timeout.  A
    list-valued field is extended (repeated fields)."""
    req = pb.TallyRequest()
    sub = getattr(req, op)
    sub.SetInParent()
    for k, v in fields.items():
        if isinstance(v, list):
            getattr(sub, k).extend(v)
        else:
            setattr(sub, k, v)
    return tally_send(endpoint, req, timeout)


def tally_send(endpoint, req, timeout=3.0):
    """Sends a TallyRequest (its corr is set here); returns the TallyReply
    with the same corr, or None."""
    s = ZCTX.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    try:
        s.connect(endpoint)
        corr = int(time.monotonic_ns() & ((1 << 62) - 1)) | 1
        req.corr = corr
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


def shard_feature(cl, fid, timeout=3.0):
    """The FeatureStanding of fid from its own shard (FeatureQuery)."""
    rep = tally_call(cl.tally_eps[shard_of(fid, cl.n)], "feature", timeout, feature_id=fid)
    check(rep is not None, "shard of %s does not answer a FeatureQuery" % fid)
    eq((rep.status, rep.error), (pb.OK, ""), "FeatureQuery %s" % fid)
    return rep.feature


def counts(fs):
    """(up by tier, down by tier, voters) of a FeatureStanding."""
    up = list(fs.up) + [0] * (3 - len(fs.up))
    down = list(fs.down) + [0] * (3 - len(fs.down))
    return up, down, fs.voters


# ---- features on chosen shards ------------------------------------------------------

def submit_until(c, model, want, nshards, prefix="Feature", limit=80):
    """Submits features until pick(owned) returns a result: want is a
    function {shard: [ids oldest first]} -> result or None.  Every feature
    submitted is added to the model."""
    owned = {s: [] for s in range(nshards)}
    for i in range(limit):
        title = "%s %d" % (prefix, i)
        r = c.submit("author-%d" % i, title, "About %s." % title, ["t%d" % (i % 2)])
        eq((r.status, r.error), (pb.OK, ""), "submit %r" % title)
        fid = r.submitted.feature_id
        model.add_feature(fid, title, ["t%d" % (i % 2)])
        owned[shard_of(fid, nshards)].append(fid)
        got = want(owned)
        if got is not None:
            return got
    raise AssertionError("%d submits and the features are still not where wanted: %r" %
                         (limit, owned))


def decline_rest(cl, model, keep):
    """Declines every submitted feature not in keep (those submit_until made
    on the way), so that ranked lists hold exactly the chosen ones."""
    for fid in model.features:
        if fid not in keep:
            set_status(cl, fid, "declined")
            model.status[fid] = "declined"


# ---- the expected state ----------------------------------------------------------

class Model(VoteModel):
    """VoteModel plus statuses, merges and the order of votes.

    Every vote gets a sequence number (the tests send one at a time, so the
    ingest stamps are in the same order); a retraction leaves a tombstone
    with its number, as the shard keeps one, because a merge honours it: DST
    keeps its own record when it is non-zero or newer than the moved vote
    (proto MergeIn).  A moved vote keeps its number, as it keeps its stamp."""

    def __init__(self, weights=None):
        super().__init__(weights)
        self.seq = 0
        self.stamp = {}    # (feature, user) -> seq of the last vote, retractions too
        self.status = {}   # feature -> status (absent = open)
        self.into = {}     # merged feature -> target
        self.held = {}     # merged feature -> {user: (value, tier, seq)} it still holds

    def target(self, fid):
        while fid in self.into:
            fid = self.into[fid]
        return fid

    def apply(self, user, feature, value, tier=""):
        fid = self.target(feature)
        self.seq += 1
        self.stamp[(fid, user)] = self.seq
        return super().apply(user, fid, value, tier)

    def merge(self, src, dst):
        """Applies a whole merge; returns (moved, kept)."""
        self.mark_merged(src, dst)
        return self.merge_in(src, dst)

    def mark_merged(self, src, dst):
        """Step 1 (MergeOut): SRC is merged, its votes stop counting there
        (SRC still holds them, retractions too, for every re-run of step 2)
        and votes on SRC go to DST from now on."""
        self.held[src] = {}
        for (f, u), st in self.stamp.items():
            if f == src:
                v, t = self.votes.pop((f, u), (0, "member"))
                self.held[src][u] = (v, t, st)
        self.status[src] = "merged"
        self.into[src] = dst

    def merge_in(self, src, dst):
        """Step 2 (MergeIn) with SRC's held votes, the shard's rule: a vote
        DST already has (same stamp: moved before, or redirected) is
        skipped; DST's non-zero vote stands (kept, when the moved one is
        non-zero too); DST's newer retraction stands; a retraction moves
        nothing; otherwise DST takes the vote (moved).  Returns (moved,
        kept)."""
        moved = kept = 0
        for u, (v, t, st) in sorted(self.held[src].items()):
            d = (dst, u)
            dst_st = self.stamp.get(d)
            if dst_st == st:
                continue
            if d in self.votes:
                kept += 1 if v else 0
                continue
            if (dst_st is not None and dst_st >= st) or v == 0:
                continue
            self.votes[d] = (v, t)
            self.stamp[d] = st
            moved += 1
        return moved, kept

    def ranked_ids(self):
        return [f for f in self.features if self.status.get(f, "open") in RANKED_STATUSES]

    def rows(self):
        return self.ranked(self.ranked_ids())

    def list_total(self):
        ids = set(self.ranked_ids())
        return sum(1 for (f, _u) in self.votes if f in ids)

    def voters_of(self, fid):
        """{user: (value, tier)} of the non-zero votes on fid."""
        return {u: vt for (f, u), vt in self.votes.items() if f == fid}


def check_list(rl, model, what, prev=None):
    """A RankedList in score order against the model: entries (rank, id,
    score, up, down, voters), status, title and, when prev is given
    ({feature: rank}), prev_rank."""
    rows = model.rows()
    got = [(e.rank, e.feature_id, e.score, e.up, e.down, e.voters, e.status) for e in rl.entries]
    want = [(r["rank"], r["feature_id"], r["score"], r["up"], r["down"], r["voters"],
             model.status.get(r["feature_id"], "open")) for r in rows]
    if got != want:
        lines = ["%s: ranked entries differ (rank id score up down voters status)" % what]
        for i in range(max(len(got), len(want))):
            g = got[i] if i < len(got) else None
            w = want[i] if i < len(want) else None
            lines.append("  %s got %r want %r" % ("  " if g == w else "!!", g, w))
        raise AssertionError("\n".join(lines))
    for e in rl.entries:
        eq(e.title, model.meta[e.feature_id][0], "%s: title of %s" % (what, e.feature_id))
        if prev is not None:
            eq(e.prev_rank, prev.get(e.feature_id, 0), "%s: prev_rank of %s" %
               (what, e.feature_id))
    eq(rl.total_votes, model.list_total(), what + ": total_votes")


def ranks_of(rl):
    return {e.feature_id: e.rank for e in rl.entries}


def check_store(cl, model, fids, what):
    """Each feature's counters on its shard (FeatureQuery) equal the model."""
    for fid in fids:
        up, down = model.per_tier(fid)
        eq(counts(shard_feature(cl, fid)), (up, down, sum(up) + sum(down)),
           "%s: %s on its shard (up by tier, down by tier, voters)" % (what, fid))


def dump_votes(cl, i):
    """{(feature, user): (value, tier)} from canvass-tally --dump-votes."""
    p = cl.tally_tool(i, "--dump-votes")
    eq(p.returncode, 0, "--dump-votes on shard %d (stderr %r)" % (i, p.stderr[-300:]))
    out = {}
    for line in p.stdout.splitlines():
        if line.strip():
            f, u, v, t = line.split("\t")
            out[(f, u)] = (int(v), t)
    return out


def check_dumped(cl, model, fids, what):
    """The stored non-zero votes of fids, per --dump-votes, equal the model's."""
    want = {k: v for k, v in model.votes.items() if k[0] in fids}
    got = {}
    for i in range(cl.n):
        got.update({k: v for k, v in dump_votes(cl, i).items() if k[0] in fids})
    missing = sorted(k for k in want if got.get(k) != want[k])
    extra = sorted(k for k in got if k not in want)
    check(not missing and not extra, "%s: stored votes differ from the recount: missing or "
          "different %r (stored %r), extra %r" %
          (what, missing[:8], [got.get(k) for k in missing[:8]], extra[:8]))


def check_every_shard(cl, what):
    """canvass-tally --check reports ok on every shard."""
    for i in range(cl.n):
        p = cl.tally_tool(i, "--check")
        check(p.returncode == 0 and p.stdout.startswith("ok "),
              "%s: --check on shard %d: rc %d, %r %r" % (what, i, p.returncode, p.stdout,
                                                          p.stderr[-300:]))


# ---- formulas (docs/ORDERS.md) ------------------------------------------------------

def wilson(up, down, z=1.96):
    n = up + down
    if n == 0:
        return 0.0
    p = up / n
    return (p + z * z / (2 * n) - z * math.sqrt((p * (1 - p) + z * z / (4 * n)) / n)) / \
        (1 + z * z / n)


def decayed(gains, at_ms, half_life_s):
    """sum of weight * 2^-(age / half-life) over gains [(weight, t_ms)]."""
    return sum(w * 2.0 ** (-(at_ms - t) / 1000.0 / half_life_s) for w, t in gains)


# ---- HTTP ---------------------------------------------------------------------------

class HttpReply:
    def __init__(self, code, headers, body):
        self.code = code
        self.headers = headers
        self.body = body

    @property
    def ctype(self):
        return self.headers.get("content-type", "")

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError("not JSON (%s): %r" % (e, self.body[:300]))

    def __repr__(self):
        return "HTTP %d %s %r" % (self.code, self.ctype, self.body[:300])


def http(method, url, body=None, timeout=10, headers=None):
    """One request; returns HttpReply whatever the status (no redirects)."""
    data = body if body is None or isinstance(body, bytes) else (
        body.encode() if isinstance(body, str) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return HttpReply(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return HttpReply(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def http_cluster(shards=2, **kw):
    """A Cluster (not started) with the HTTP address the harness gave each
    service that has --http: cl.http_publish, cl.http_ingest and
    cl.http_tally[i] are base URLs, or None for a service without HTTP."""
    cl = Cluster(shards=shards, **kw)

    def url(name):
        addr = cl.http_addr.get(name)
        return "http://" + addr if addr else None
    cl.http_publish = url("publish")
    cl.http_ingest = url("ingest")
    cl.http_tally = [url("tally-%d" % i) for i in range(shards)]
    return cl


def wait_http(url, timeout=10):
    wait_until(lambda: http("GET", url, timeout=1).code == 200, timeout, "GET %s -> 200" % url)
