"""App keys, rights, signed user tokens and rate limits (DESIGN A4, A9;
common/cv_auth.h, services/ingest/admit.h), against the real processes:

  * with a key file, nothing but a Hello with a known key gets through,
    and the connection stays open for a correct one;
  * each app can do exactly what its rights say (vote, submit, assert_tier,
    admin), on ingest and on publish's REP and HTTP APIs;
  * user tokens: valid ones accepted; forged, expired, another user's or
    another tier's refused, and none of the refused votes is counted;
  * per-user and per-connection rate limits answer RATE_LIMITED and
    recover;
  * a bad key file stops ingest and publish with FILE:LINE: reason, exit 2;
  * an open cluster says so loudly; `canvass up --key-file` passes it on."""
import os
import secrets
import signal
import time

from harness import (HOST, Client, Cluster, Proc, admin_call, binary, check, clean_env, eq,
                     free_port_base, main, make_admin, make_ping, make_submit, make_tmpdir,
                     make_vote, pb, run, test, wait_until)
from release_helpers import admin_op, http, wait_http
from usertoken import sign

FORUM = "forum-" + secrets.token_hex(16)
VOTER = "voter-" + secrets.token_hex(16)
TRUSTED = "trusted-" + secrets.token_hex(16)
PHONE = "phone-" + secrets.token_hex(16)
OPS = "ops-" + secrets.token_hex(16)
SECRET_FORUM = secrets.token_bytes(32)
SECRET_PHONE = secrets.token_bytes(32)
KEYS = """# Canvass app keys for test_auth
{forum} {sf} vote,submit forum
{voter} - vote voter       # votes only, signs no tokens
{trusted}  -  vote,submit,assert_tier trusted
{phone} {sp} vote,assert_tier,require_token phone
{ops} - admin ops
""".format(forum=FORUM, voter=VOTER, trusted=TRUSTED, phone=PHONE, ops=OPS,
           sf=SECRET_FORUM.hex(), sp=SECRET_PHONE.hex())

NO_HELLO = "send Hello with an app key first"
MISMATCH = "user token does not match user or tier"
NOT_ADMIN = "app 'forum' may not use the release-manager API (needs the admin right)"
NO_KEY = "no app key: this cluster needs one (app keys are in use)"


def write_keys(text=KEYS, name="keys"):
    path = os.path.join(make_tmpdir("keys"), name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


class KeyCluster(Cluster):
    """A cluster whose ingest and publish read a key file; readiness is
    checked with the keys (the harness's own check sends none)."""

    def __init__(self, keyfile, ingest_args=(), publish_args=(), **kw):
        super().__init__(ingest_args=["--key-file", keyfile] + list(ingest_args),
                         publish_args=["--key-file", keyfile] + list(publish_args), **kw)

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        for i in range(self.n):
            self.wait_shard(i, deadline - time.monotonic())
        self._wait(lambda: self.admin(cycles=True, app_key=OPS, timeout=0.5)[0].status == pb.OK,
                   deadline, "publish REP to answer an admin key")

        def pong():
            with self.client(timeout=2) as c:
                return hello(c, FORUM).status == pb.OK and c.ping(7).pong.nonce == 7
        self._wait(pong, deadline, "ingest to answer a Ping after Hello")


def hello(c, key, version=1):
    r = pb.Request(request_id=c.rid())
    r.hello.app_key = key
    r.hello.client_name = "test_auth"
    r.hello.protocol_version = version
    return c.request(r)


def vote(c, user, fid, value=1, tier="", token=None):
    r = make_vote(c.rid(), user, fid, value, tier)
    if token is not None:
        r.vote.user_token = token
    return c.request(r)


def refused(rep, status, error, what):
    eq(pb.Status.Name(rep.status), pb.Status.Name(status), "%s: status (error %r)" %
       (what, rep.error))
    eq(rep.error, error, "%s: error text" % what)
    eq(rep.WhichOneof("result"), None, "%s: a refusal carries no result" % what)


def ok(rep, what):
    eq(pb.Status.Name(rep.status), "OK", "%s: status (error %r)" % (what, rep.error))
    return rep


def submit(c, user="author", title="A feature"):
    rep = ok(c.submit(user, title), "submit %r" % title)
    return rep.submitted.feature_id


def live(cl):
    """{feature_id: (score, up, down)} of the live list, read with the admin key."""
    rep, _ = cl.admin(ranked=("live", 0, ""), app_key=OPS)
    ok(rep, "live ranked list")
    return {e.feature_id: (e.score, e.up, e.down) for e in rep.ranked.entries}


def log_text(proc):
    with open(proc.log_path, errors="replace") as f:
        return f.read()


# ---- ingest: Hello, keys, rights ---------------------------------------------------

@test(timeout=60)
def test_hello_first_and_unknown_keys():
    with KeyCluster(write_keys(), shards=2) as cl:
        with cl.client() as c:
            refused(c.ping(1), pb.UNAUTHENTICATED, NO_HELLO, "ping before Hello")
            refused(vote(c, "u1", "Fxyz"), pb.UNAUTHENTICATED, NO_HELLO, "vote before Hello")
            refused(c.submit("u1", "Sneaky"), pb.UNAUTHENTICATED, NO_HELLO, "submit before Hello")
            refused(hello(c, ""), pb.UNAUTHENTICATED, NO_KEY, "Hello without a key")
            refused(hello(c, "nope"), pb.UNAUTHENTICATED, "unknown app key", "unknown key")
            refused(hello(c, FORUM[:-1]), pb.UNAUTHENTICATED, "unknown app key", "key prefix")
            refused(hello(c, FORUM + "0"), pb.UNAUTHENTICATED, "unknown app key", "key + 1 char")
            refused(hello(c, "forum"), pb.UNAUTHENTICATED, "unknown app key", "the app's name")
            eq(hello(c, FORUM, version=2).status, pb.INVALID, "Hello with protocol version 2")
            refused(c.ping(2), pb.UNAUTHENTICATED, NO_HELLO, "ping after bad Hellos")
            # the same connection, still open, takes a correct Hello
            ok(hello(c, FORUM), "Hello with the forum key")
            eq(c.ping(3).pong.nonce, 3, "ping after Hello")
            fid = submit(c)
            ok(vote(c, "u1", fid), "vote after Hello")
            # a failed Hello drops the connection's app
            refused(hello(c, "wrong"), pb.UNAUTHENTICATED, "unknown app key", "second Hello")
            refused(vote(c, "u2", fid), pb.UNAUTHENTICATED, NO_HELLO, "vote after a failed Hello")
            ok(hello(c, FORUM), "Hello again")
            ok(vote(c, "u2", fid), "vote after Hello again")
        # pipelined requests before any Hello are all refused, none is stored
        with cl.client() as c:
            reqs = [make_vote(0, "p%d" % i, fid, 1) for i in range(20)]
            reqs += [make_submit(0, "p", "Sneaky %d" % i) for i in range(5)]
            for rid, rep in c.pipeline(reqs).items():
                refused(rep, pb.UNAUTHENTICATED, NO_HELLO, "pipelined request %d" % rid)
        eq(live(cl), {fid: (2.0, 2, 0)}, "only the two votes after Hello count")
        rep, _ = admin_op(cl, "features", app_key=OPS)
        eq([f.feature.feature_id for f in ok(rep, "features").features.features], [fid],
           "the submits before Hello created nothing")
        check("app keys in use" in log_text(cl.ingest) and
              "OPEN CLUSTER" not in log_text(cl.ingest), "ingest logs that keys are in use")
        check("app keys in use" in log_text(cl.publish) and
              "OPEN CLUSTER" not in log_text(cl.publish), "publish logs that keys are in use")


@test(timeout=60)
def test_rights_and_tiers():
    with KeyCluster(write_keys(), shards=2) as cl:
        with cl.client() as forum, cl.client() as voter, cl.client() as trusted, \
                cl.client() as admin:
            ok(hello(forum, FORUM), "forum Hello")
            ok(hello(voter, VOTER), "voter Hello")
            ok(hello(trusted, TRUSTED), "trusted Hello")
            ok(hello(admin, OPS), "ops Hello (any known app may say Hello)")
            fid = submit(forum)
            refused(voter.submit("u9", "Voters cannot submit"), pb.FORBIDDEN,
                    "app 'voter' may not submit", "vote-only app submits")
            refused(admin.submit("u9", "Nor can admins"), pb.FORBIDDEN,
                    "app 'ops' may not submit", "admin-only app submits")
            refused(vote(admin, "u9", fid), pb.FORBIDDEN, "app 'ops' may not vote",
                    "admin-only app votes")
            for tier in ("core", "honorary"):
                refused(vote(forum, "u5", fid, tier=tier), pb.FORBIDDEN,
                        "app 'forum' may not assert a tier", "forum asserts %s" % tier)
                refused(vote(voter, "u6", fid, tier=tier), pb.FORBIDDEN,
                        "app 'voter' may not assert a tier", "voter asserts %s" % tier)
            ok(vote(forum, "u1", fid), "forum: member vote, no tier")
            ok(vote(voter, "u2", fid, tier="member"), "voter: member vote, tier named")
            ok(vote(trusted, "u3", fid, tier="honorary"), "trusted: honorary")
            ok(vote(trusted, "u4", fid, tier="core"), "trusted: core")
            eq(trusted.submit("u3", "Trusted submits").status, pb.OK, "trusted app submits")
        # member 1 + member 1 + honorary 10 + core 3; the refused votes are absent
        eq(live(cl)[fid], (15.0, 4, 0), "score, up, down of the voted feature")


# ---- user tokens ------------------------------------------------------------------------

@test(timeout=60)
def test_user_tokens():
    now = int(time.time())
    with KeyCluster(write_keys(), shards=2) as cl:
        with cl.client() as forum:
            ok(hello(forum, FORUM), "forum Hello")
            f1, f2, f3 = submit(forum, title="One"), submit(forum, title="Two"), \
                submit(forum, title="Three")
        with cl.client() as c:
            ok(hello(c, PHONE), "phone Hello")
            refused(vote(c, "alice", f1), pb.UNAUTHENTICATED,
                    "app 'phone' requires a user token with every vote", "phone vote, no token")
            good = sign(SECRET_PHONE, "alice", "member", now + 600)
            ok(vote(c, "alice", f1, token=good), "valid token")
            ok(vote(c, "alice", f1, value=-1, token=good), "same token, another value")
            refused(vote(c, "bob", f1, token=good), pb.UNAUTHENTICATED, MISMATCH,
                    "alice's token for bob")
            refused(vote(c, "alice", f1, tier="core", token=good), pb.UNAUTHENTICATED, MISMATCH,
                    "member token claiming core")
            core = sign(SECRET_PHONE, "carol", "core", now + 600)
            ok(vote(c, "carol", f2, tier="core", token=core), "core token, tier core")
            refused(vote(c, "carol", f2, tier="honorary", token=core), pb.UNAUTHENTICATED,
                    MISMATCH, "core token claiming honorary")
            refused(vote(c, "carol", f3, token=core), pb.UNAUTHENTICATED, MISMATCH,
                    "core token used as member")
            refused(vote(c, "dave", f1, token=sign(SECRET_PHONE, "dave", "member", now - 1)),
                    pb.UNAUTHENTICATED, "user token expired", "expired token")
            refused(vote(c, "dave", f1, token=sign(SECRET_FORUM, "dave", "member", now + 600)),
                    pb.UNAUTHENTICATED, MISMATCH, "token signed with another app's secret")
            refused(vote(c, "dave", f1, token=secrets.token_bytes(40)), pb.UNAUTHENTICATED,
                    MISMATCH, "random bytes")
            stale = sign(SECRET_PHONE, "dave", "member", now - 60)
            redated = (now + 3600).to_bytes(8, "big") + stale[8:]
            refused(vote(c, "dave", f1, token=redated), pb.UNAUTHENTICATED, MISMATCH,
                    "expired token with a later expiry written in")
            for i in range(40):
                bad = bytearray(good)
                bad[i] ^= 0x01
                refused(vote(c, "alice", f3, token=bytes(bad)), pb.UNAUTHENTICATED, MISMATCH,
                        "token with byte %d changed" % i)
            refused(vote(c, "dave", f1, token=good[:39]), pb.UNAUTHENTICATED,
                    "user token must be 40 bytes, got 39", "short token")
            refused(vote(c, "dave", f1, token=good + b"\0"), pb.UNAUTHENTICATED,
                    "user token must be 40 bytes, got 41", "long token")
            refused(vote(c, "dave", f1, token=b""), pb.UNAUTHENTICATED,
                    "app 'phone' requires a user token with every vote", "empty token")
        # an app without require_token: a token is optional, but checked when sent
        with cl.client() as c:
            ok(hello(c, FORUM), "forum Hello")
            ok(vote(c, "erin", f3), "forum vote without a token")
            ok(vote(c, "frank", f3, token=sign(SECRET_FORUM, "frank", "member", now + 60)),
               "forum vote with a valid token")
            refused(vote(c, "gina", f3, token=sign(SECRET_PHONE, "gina", "member", now + 60)),
                    pb.UNAUTHENTICATED, MISMATCH, "forum vote with the phone's token")
        with cl.client() as c:
            ok(hello(c, VOTER), "voter Hello")
            refused(vote(c, "hal", f3, token=sign(SECRET_FORUM, "hal", "member", now + 60)),
                    pb.UNAUTHENTICATED, "app 'voter' has no secret to check user tokens with",
                    "a token to an app without a secret")
        # f1: alice down (member); f2: carol up (core); f3: erin and frank up
        eq(live(cl), {f1: (-1.0, 0, 1), f2: (3.0, 1, 0), f3: (2.0, 2, 0)},
           "only the accepted votes are counted")


def submit_req(c, user, title, token=None):
    r = make_submit(c.rid(), user, title)
    if token is not None:
        r.submit.user_token = token
    return c.request(r)


@test(timeout=60)
def test_submit_tokens():
    """Submit.user_token (an extension of A4): checked when sent, required
    from a require_token app; any tier's token of the author will do."""
    board = "board-" + secrets.token_hex(16)
    keys = KEYS + "{board} {sb} submit,require_token board\n".format(
        board=board, sb=SECRET_PHONE.hex())
    now = int(time.time())
    with KeyCluster(write_keys(keys), shards=1) as cl:
        with cl.client() as c:
            ok(hello(c, board), "board Hello")
            refused(submit_req(c, "ann", "No token"), pb.UNAUTHENTICATED,
                    "app 'board' requires a user token with every submit", "submit without token")
            for tier in ("member", "core", "honorary"):
                ok(submit_req(c, "ann", "Signed as %s" % tier,
                              sign(SECRET_PHONE, "ann", tier, now + 60)), "token of tier " + tier)
            refused(submit_req(c, "ann", "Bob's token", sign(SECRET_PHONE, "bob", "member", now + 60)),
                    pb.UNAUTHENTICATED, MISMATCH, "another user's token")
            refused(submit_req(c, "ann", "Forum's token", sign(SECRET_FORUM, "ann", "member", now + 60)),
                    pb.UNAUTHENTICATED, MISMATCH, "another app's secret")
            refused(submit_req(c, "ann", "Old token", sign(SECRET_PHONE, "ann", "core", now - 5)),
                    pb.UNAUTHENTICATED, "user token expired", "expired token")
        with cl.client() as c:
            ok(hello(c, FORUM), "forum Hello")
            ok(submit_req(c, "cy", "Forum, no token"), "optional without require_token")
            refused(submit_req(c, "cy", "Forum, forged", bytes(40)), pb.UNAUTHENTICATED, MISMATCH,
                    "a forged token is checked when sent")
        req = pb.AdminRequest(app_key=OPS)
        req.features.SetInParent()
        rep, _ = admin_call(cl.rep_ep, req)
        ok(rep, "features")
        titles = sorted(f.feature.title for f in rep.features.features)
        eq(titles, ["Forum, no token", "Signed as core", "Signed as honorary", "Signed as member"],
           "exactly the accepted submits were stored")


@test(timeout=30)
def test_token_helper_command():
    """tests/usertoken.py as a command matches the module (which the tests
    above check against the server), and refuses a bad tier."""
    p = run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "usertoken.py"),
             "--secret", SECRET_PHONE.hex(), "--user", "zoe", "--tier", "core", "--expiry",
             "1900000000"])
    eq(p.returncode, 0, "usertoken.py exit code (%r)" % p.stderr)
    eq(p.stdout.strip(), sign(SECRET_PHONE, "zoe", "core", 1900000000).hex(), "token hex")
    p = run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "usertoken.py"),
             "--secret", "00", "--user", "zoe", "--tier", "boss"])
    check(p.returncode != 0, "usertoken.py accepted tier 'boss'")


# ---- rate limits -----------------------------------------------------------------------

def refused_counts(cl):
    out = {}
    r = http("GET", "http://%s/metrics" % cl.http_addr["ingest"])
    eq(r.code, 200, "ingest /metrics")
    for line in r.body.decode().splitlines():
        if line.startswith("canvass_ingest_refused_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            out[reason] = float(line.rsplit(" ", 1)[1])
    return out


@test(timeout=60)
def test_rate_limits():
    """An open cluster (rate limits apply with or without keys) with low
    limits: 5 votes/s per user after a burst of 5, 20 requests/s per
    connection after a burst of 30."""
    with Cluster(shards=2, ingest_args=["--user-rate", "5", "--user-burst", "5", "--conn-rate",
                                        "20", "--conn-burst", "30"]) as cl:
        check("OPEN CLUSTER" in log_text(cl.ingest), "ingest says loudly that it is open")
        check("OPEN CLUSTER" in log_text(cl.publish), "publish says loudly that it is open")
        with cl.client() as c:
            fid = submit(c)
            # the per-user limit is on votes: one author's 8 submits all pass
            for i in range(8):
                submit(c, title="Import %d" % i)
        over = "user 'alice' is over 5 votes/s"
        with cl.client() as c, cl.client() as c2:
            got = c.pipeline([make_vote(0, "alice", fid, 1) for _ in range(12)])
            oks = [rid for rid, r in got.items() if r.status == pb.OK]
            limited = [rid for rid, r in got.items() if r.status == pb.RATE_LIMITED]
            check(5 <= len(oks) <= 6, "alice's burst of 5 (+1 refill at most): %d OK" % len(oks))
            eq(len(oks) + len(limited), 12, "every reply is OK or RATE_LIMITED")
            eq(sorted(oks), sorted(got)[:len(oks)], "the first requests are the ones let through")
            for rid in limited:
                refused(got[rid], pb.RATE_LIMITED, over, "alice's request %d" % rid)
            ok(vote(c, "bob", fid), "another user on the same connection")
            refused(vote(c2, "alice", fid), pb.RATE_LIMITED, over,
                    "alice on another connection")
            odd = "o'\x01\u00e9"
            replies = c.pipeline([make_vote(0, odd, fid, 1) for _ in range(7)]).values()
            check(any(r.status == pb.RATE_LIMITED for r in replies), "odd user limited")
            for r in replies:
                if r.status == pb.RATE_LIMITED:
                    eq(r.error, "user 'o\\x27\\x01\u00e9' is over 5 votes/s",
                       "user id escaped in the error")
            time.sleep(0.5)  # 2.5 tokens
            ok(vote(c2, "alice", fid), "alice after half a second")
        with cl.client() as c, cl.client() as c2:
            got = c.pipeline([make_ping(0, i) for i in range(45)])
            oks = sorted(rid for rid, r in got.items() if r.status == pb.OK)
            check(30 <= len(oks) <= 33, "connection burst of 30 (+ refill): %d OK" % len(oks))
            eq(oks, sorted(got)[:len(oks)], "the first pings are the ones answered")
            for rid, r in got.items():
                if r.status != pb.OK:
                    refused(r, pb.RATE_LIMITED, "connection is over 20 requests/s",
                            "ping %d" % rid)
            eq(c2.ping(99).pong.nonce, 99, "another connection is not limited")
            time.sleep(0.3)
            eq(c.ping(100).pong.nonce, 100, "the connection recovers")
        counts = refused_counts(cl)
        check(counts.get("user_rate", 0) >= 7, "metrics count user_rate refusals: %r" % counts)
        check(counts.get("conn_rate", 0) >= 12, "metrics count conn_rate refusals: %r" % counts)
        eq(live(cl)[fid][1], 3, "up votes: alice, bob, the odd user")


@test(timeout=60)
def test_default_limits():
    """The defaults, as --help says: 100000 requests/s per connection; per
    user 50 votes/s after a burst of 100 with app keys, and no per-user limit
    in an open cluster (where a user id means nothing)."""
    lines = run([binary("canvass-ingest"), "--help"]).stdout.splitlines()
    for flag, default in (("--user-rate", "-1"), ("--user-burst", "100"),
                          ("--conn-rate", "100000"), ("--conn-burst", "100000"),
                          ("--user-table", "200000"), ("--key-file", "(none)")):
        at = [i for i, x in enumerate(lines) if x.strip().startswith(flag + " ")]
        eq(len(at), 1, "ingest --help lists %s once" % flag)
        env = lines[at[0] + 1].strip()
        eq(env.split(", default ")[-1], default, "ingest --help: default of %s" % flag)
    check("50 with --key-file" in lines[[i for i, x in enumerate(lines)
                                          if x.strip().startswith("--user-rate ")][0]],
          "ingest --help explains --user-rate -1")
    with Cluster(shards=2) as cl:
        with cl.client() as c:
            fid = submit(c)
            got = c.pipeline([make_vote(0, "u%d" % (i % 1000), fid, 1 if i < 1000 else -1)
                              for i in range(2000)])
            eq([r for r in got.values() if r.status != pb.OK][:3], [], "1000 users, 2 votes each")
            got = c.pipeline([make_vote(0, "heavy", fid, (-1, 1)[i % 2]) for i in range(1000)])
            eq([r for r in got.values() if r.status != pb.OK][:3], [],
               "open cluster: one user's 1000 votes at once")
    with KeyCluster(write_keys(), shards=2) as cl:
        with cl.client() as c:
            ok(hello(c, FORUM), "forum Hello")
            fid = submit(c)
            got = c.pipeline([make_vote(0, "heavy", fid, 1) for _ in range(130)])
            n_ok = sum(r.status == pb.OK for r in got.values())
            check(100 <= n_ok <= 110, "with keys, user burst 100: %d OK of 130" % n_ok)
            for r in got.values():
                if r.status != pb.OK:
                    refused(r, pb.RATE_LIMITED, "user 'heavy' is over 50 votes/s", "heavy user")


# ---- publish: admin key ------------------------------------------------------------------

@test(timeout=60)
def test_admin_requests_need_an_admin_key():
    with KeyCluster(write_keys(), shards=2) as cl:
        for key, status, error in (("", pb.UNAUTHENTICATED, NO_KEY),
                                   ("nope", pb.UNAUTHENTICATED, "unknown app key"),
                                   (FORUM, pb.FORBIDDEN, NOT_ADMIN)):
            for op in ("cycles", "close", "features", "ranked"):
                rep, _ = admin_op(cl, op, app_key=key)
                refused(rep, status, error, "REP %s with key %r" % (op, key[:8]))
        rep, _ = cl.admin(cycles=True, app_key=OPS)
        eq([c.state for c in ok(rep, "cycles with the admin key").cycles.cycles], ["open"],
           "the refused closes closed nothing")
        rep, _ = cl.admin(close=True, app_key=OPS)
        eq(ok(rep, "close with the admin key").closed.cycle, 1, "closed cycle")

        base = "http://%s" % cl.http_addr["publish"]
        wait_http(base + "/healthz")
        eq(http("GET", base + "/healthz").code, 200, "/healthz needs no key")
        for hdrs, code, status, error in (
                ({}, 401, "UNAUTHENTICATED", NO_KEY),
                ({"Authorization": "Bearer nope"}, 401, "UNAUTHENTICATED", "unknown app key"),
                ({"Authorization": "Bearer " + FORUM}, 403, "FORBIDDEN", NOT_ADMIN)):
            for method, path in (("GET", "/v1/cycles"), ("GET", "/v1/ranked"),
                                 ("POST", "/v1/cycles/close")):
                r = http(method, base + path, body=b"" if method == "POST" else None,
                         headers=hdrs)
                eq(r.code, code, "HTTP %s %s with %r" % (method, path, hdrs))
                eq(r.json(), {"status": status, "error": error}, "HTTP %s %s body" %
                   (method, path))
        admin_hdr = {"Authorization": "Bearer " + OPS}
        r = http("GET", base + "/v1/cycles", headers=admin_hdr)
        eq(r.code, 200, "HTTP cycles with the admin key")
        eq(len(r.json()["cycles"]), 2, "cycle 1 closed, 2 open")
        r = http("POST", base + "/v1/cycles/close", body=b"", headers=admin_hdr)
        eq(r.code, 200, "HTTP close with the admin key (%r)" % r.body[:200])

        # the command-line tool: --app-key (CANVASS_APP_KEY) goes into every request
        p = cl.cli("cycles")
        check(p.returncode != 0 and "UNAUTHENTICATED" in p.stderr,
              "canvass cycles without a key: %r" % p.stderr)
        p = cl.cli("cycles", env={"CANVASS_APP_KEY": OPS})
        eq(p.returncode, 0, "canvass cycles with the admin key (%r)" % p.stderr)
        p = cl.cli("cycle", "close", env={"CANVASS_APP_KEY": FORUM})
        check(p.returncode != 0 and "FORBIDDEN" in p.stderr,
              "canvass cycle close with the forum key: %r" % p.stderr)
        p = cl.cli("submit", "--user", "u1", "From the CLI", env={"CANVASS_APP_KEY": FORUM})
        eq(p.returncode, 0, "canvass submit with the forum key (%r)" % p.stderr)
        p = cl.cli("submit", "--user", "u1", "No key")
        check(p.returncode != 0 and NO_HELLO in p.stderr, "canvass submit without a key: %r" %
              p.stderr)


# ---- key files and canvass up ------------------------------------------------------------

@test(timeout=60)
def test_bad_key_files_refuse_to_start():
    cases = [
        ("keys-right", KEYS + "k-0123456789abcdef - vote,dance\n", 7,
         "unknown right 'dance' (vote, submit, assert_tier, admin, require_token)"),
        ("keys-dup", KEYS + "# again\n" + FORUM + " - vote\n", 8,
         "duplicate app key (first on line 2)"),
        ("keys-fields", "ok-0123456789abcdef - vote\n\nlonely-key-only\n", 3,
         "expected 'app_key secret_hex rights [name]', got 1 field"),
        ("keys-hex", "k-0123456789abcdef 0123456789abcdef0123456789abcdeX vote\n", 1,
         "secret must be hex digits (0-9, a-f), found 'X'"),
        ("keys-token", "k-0123456789abcdef - vote,require_token\n", 1,
         "require_token needs a secret to check tokens with, not '-'"),
    ]
    for name, text, line, reason in cases:
        path = write_keys(text, name)
        for prog in ("canvass-ingest", "canvass-publish"):
            p = run([binary(prog), "--key-file", path, "--http", "off"], timeout=10)
            eq(p.returncode, 2, "%s with %s: exit code (%r)" % (prog, name, p.stderr))
            eq(p.stderr.strip().splitlines()[-1], "%s: %s:%d: %s" % (prog, path, line, reason),
               "%s with %s: the reason" % (prog, name))
    missing = os.path.join(make_tmpdir("keys"), "missing")
    for prog in ("canvass-ingest", "canvass-publish"):
        p = run([binary(prog), "--http", "off"], timeout=10,
                env=clean_env({"CANVASS_KEY_FILE": missing}))
        eq(p.returncode, 2, "%s with a missing key file (env): exit code" % prog)
        eq(p.stderr.strip().splitlines()[-1],
           "%s: %s: cannot read: No such file or directory" % (prog, missing),
           "%s: missing key file" % prog)
    empty = write_keys("# nothing yet\n", "empty")
    p = run([binary("canvass-ingest"), "--key-file", empty, "--http", "off"], timeout=10)
    eq(p.returncode, 2, "ingest with a key file without apps")
    check("no apps" in p.stderr, "ingest says the key file has no apps: %r" % p.stderr)


@test(timeout=90)
def test_up_passes_the_key_file():
    offsets = [0, 10, 11, 20, 21, 80, 81, 82, 83]
    base = free_port_base(offsets)
    d = make_tmpdir("up")
    keys = write_keys()
    up = Proc("canvass-up", [binary("canvass"), "up", "--data", os.path.join(d, "var"),
                             "--shards", "2", "--port-base", str(base), "--key-file", keys],
              os.path.join(d, "up.log"))
    up.start()
    env = {"CANVASS_SERVER": "%s:%d" % (HOST, base),
           "CANVASS_PUBLISH": "%s:%d" % (HOST, base + 21)}

    def cli(*args, key=None):
        e = dict(env)
        if key:
            e["CANVASS_APP_KEY"] = key
        return run([binary("canvass")] + list(args), timeout=30, env=clean_env(e))

    def refuses_ping():
        check(up.alive(), "canvass up exited")
        with Client(HOST, base, timeout=2) as c:
            r = c.ping(1)
            return r.status == pb.UNAUTHENTICATED and r.error == NO_HELLO
    wait_until(refuses_ping, 30, "ingest under canvass up to refuse a Ping without Hello")
    wait_until(lambda: cli("cycles", key=OPS).returncode == 0, 30, "publish to take the key")
    p = cli("submit", "--user", "u1", "Under up", key=FORUM)
    eq(p.returncode, 0, "submit with the forum key (%r)" % p.stderr)
    fid = p.stdout.split()[-1]
    tok = sign(SECRET_PHONE, "u2", "core", int(time.time()) + 60).hex()
    p = cli("vote", "--user", "u2", "--tier", "core", "--token", tok, fid, "up", key=PHONE)
    eq(p.returncode, 0, "vote with a token through the CLI (%r)" % p.stderr)
    p = cli("vote", "--user", "u3", fid, "up", key=PHONE)
    check(p.returncode != 0 and "requires a user token" in p.stderr,
          "phone vote without a token: %r" % p.stderr)
    p = cli("cycle", "close", key=FORUM)
    check(p.returncode != 0 and "FORBIDDEN" in p.stderr, "close with the forum key: %r" %
          p.stderr)
    up.signal(signal.SIGINT)
    eq(up.wait(30), 0, "canvass up exit code after Ctrl-C")
    text = log_text(up)
    check("app keys" in text and keys in text, "the banner names the key file")


if __name__ == "__main__":
    main()
