"""CURVE between hosts (DESIGN A9; docs/OPERATIONS.md "Encryption between
hosts"): `canvass keygen` makes the key pairs; with --curve-key every ZeroMQ
socket is encrypted and authenticated, the cluster works end to end (votes,
the CLI's release-manager commands), and a peer with an unknown key, or with
no CURVE at all, is refused by the shards and by publish."""
import json
import os
import stat
import time

import zmq

from harness import (ZCTX, Cluster, binary, check, eq, main, make_admin, make_tmpdir, pb, run,
                     test, wait_until)


def keygen(d, name):
    p = run([binary("canvass"), "keygen", "--out", d, "--name", name])
    eq(p.returncode, 0, "keygen %s (%r)" % (name, p.stderr))
    keys = {}
    with open(os.path.join(d, name + ".key")) as f:
        for line in f:
            if line.startswith(("public ", "secret ")):
                k, v = line.split()
                keys[k] = v.encode()
    eq(p.stdout.strip().encode(), keys["public"], "keygen prints the public key")
    return keys


def curve_socket(kind, keys, server_pub):
    s = ZCTX.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        s.curve_publickey = keys["public"]
        s.curve_secretkey = keys["secret"]
        s.curve_serverkey = server_pub
    return s


def standings(endpoint, keys, server_pub, timeout=2.0):
    """A StandingsQuery to a shard; the reply, or None when none comes."""
    s = curve_socket(zmq.DEALER, keys, server_pub)
    try:
        s.connect(endpoint)
        req = pb.TallyRequest(corr=77)
        req.standings.SetInParent()
        s.send(req.SerializeToString())
        if not s.poll(int(timeout * 1000)):
            return None
        rep = pb.TallyReply()
        rep.ParseFromString(s.recv())
        return rep
    finally:
        s.close()


def admin(endpoint, keys, server_pub, timeout=2.0, **op):
    s = curve_socket(zmq.REQ, keys, server_pub)
    try:
        s.connect(endpoint)
        s.send(make_admin(**op).SerializeToString())
        if not s.poll(int(timeout * 1000)):
            return None
        rep = pb.AdminReply()
        rep.ParseFromString(s.recv())
        return rep
    finally:
        s.close()


class CurveCluster(Cluster):
    def __init__(self, d, cli_keys, server_pub, **kw):
        server = ["--curve-key", os.path.join(d, "server.key"),
                  "--curve-allow", os.path.join(d, "allow")]
        super().__init__(tally_args=server, publish_args=server,
                         ingest_args=["--curve-key", os.path.join(d, "ingest.key"),
                                      "--curve-server", os.path.join(d, "server.pub")], **kw)
        self.keys, self.server_pub, self.keydir = cli_keys, server_pub, d

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        for ep in self.tally_eps:
            self._wait(lambda: standings(ep, self.keys, self.server_pub, 0.5) is not None,
                       deadline, "a shard to answer over CURVE")
        self._wait(lambda: (admin(self.rep_ep, self.keys, self.server_pub, 0.5, cycles=True)
                            or pb.AdminReply(status=pb.INTERNAL)).status == pb.OK,
                   deadline, "publish to answer over CURVE")

        def pong():
            with self.client(timeout=2) as c:
                return c.ping(7).pong.nonce == 7
        self._wait(pong, deadline, "ingest to answer a Ping")

    def curve_cli(self, *args):
        return self.cli(*args, "--curve-key", os.path.join(self.keydir, "cli.key"),
                        "--curve-server", os.path.join(self.keydir, "server.pub"), timeout=30)


def log_text(proc):
    with open(proc.log_path, errors="replace") as f:
        return f.read()


@test(timeout=120)
def test_curve_cluster_refuses_unknown_peers():
    d = make_tmpdir("curve")
    server, ingest, cli, intruder = (keygen(d, n) for n in ("server", "ingest", "cli", "intruder"))
    eq(stat.S_IMODE(os.stat(os.path.join(d, "server.key")).st_mode), 0o600, "mode of a .key")
    eq(stat.S_IMODE(os.stat(os.path.join(d, "server.pub")).st_mode), 0o644, "mode of a .pub")
    p = run([binary("canvass"), "keygen", "--out", d, "--name", "server"])
    check(p.returncode != 0 and "never overwrites" in p.stderr, "keygen over an existing key: %r"
          % p.stderr)
    with open(os.path.join(d, "allow"), "w") as f:
        f.write("# clients of the cluster\n%s\npublic %s\n" % (ingest["public"].decode(),
                                                              cli["public"].decode()))
    spub = server["public"]

    with CurveCluster(d, cli, spub, shards=2) as cl:
        with cl.client() as c:
            r = c.submit("author", "Encrypted feature")
            eq(r.status, pb.OK, "submit through ingest over CURVE (error %r)" % r.error)
            fid = r.submitted.feature_id
            for u in ("a", "b", "c"):
                eq(c.vote(u, fid, 1).status, pb.OK, "vote by %s" % u)
        p = cl.curve_cli("ranked", "--cycle", "live", "--format", "json")
        eq(p.returncode, 0, "canvass ranked with the CLI's keys (%r)" % p.stderr)
        entries = json.loads(p.stdout)["entries"]
        eq([(e["feature_id"], e["up"]) for e in entries], [(fid, 3)], "the live list")
        p = cl.curve_cli("cycle", "close")
        eq(p.returncode, 0, "canvass cycle close over CURVE (%r)" % p.stderr)

        # canvass-loadgen --verify asks publish over CURVE with the client keys
        lg = [binary("canvass-loadgen"), "--server", cl.server, "--publish", cl.publish_addr,
              "--quiet", "--votes", "300", "--features", "5", "--users", "40",
              "--connections", "2", "--depth", "8", "--verify-timeout", "10"]
        p = run(lg + ["--curve-key", os.path.join(d, "cli.key"),
                      "--curve-server", os.path.join(d, "server.pub")], timeout=120)
        eq(p.returncode, 0, "loadgen --verify over CURVE (%r, %r)" % (p.stdout, p.stderr))
        check("verify: ok 5 features" in p.stdout, "no verify line in %r" % p.stdout)
        p = run(lg + ["--votes", "20"], timeout=120)
        check(p.returncode != 0 and "did not answer" in p.stdout,
              "loadgen --verify without keys got the list: %r" % p.stdout)
        p = run(lg + ["--curve-key", os.path.join(d, "cli.pub")], timeout=30)
        check(p.returncode == 2 and "no secret key" in p.stderr,
              "loadgen with a .pub as its key pair starts: %r" % p.stderr)

        # unknown key, and no CURVE at all: no answer from any server
        for ep in cl.tally_eps:
            eq(standings(ep, intruder, spub), None, "a shard answered an unknown key")
            eq(standings(ep, None, None), None, "a shard answered a plaintext peer")
        eq(admin(cl.rep_ep, intruder, spub, cycles=True), None, "publish answered an unknown key")
        eq(admin(cl.rep_ep, None, None, cycles=True), None, "publish answered a plaintext peer")
        p = cl.cli("cycles", "--timeout", "2")
        check(p.returncode != 0, "the CLI without keys got an answer: %r" % p.stdout)
        wait_until(lambda: "curve: peer refused" in log_text(cl.tallies[0]), 10,
                   "shard 0 to log the refusal")
        check("curve: peer refused" in log_text(cl.publish), "publish logs the refusal")
        check(intruder["public"].decode() in log_text(cl.tallies[0]), "the refused key is logged")

        # and everyone known is still served
        with cl.client() as c:
            eq(c.vote("d", fid, 1).status, pb.OK, "a vote after the intruders")
        rep = admin(cl.rep_ep, cli, spub, 5, cycles=True)
        check(rep is not None and rep.status == pb.OK, "publish answers the CLI's key")
        check(standings(cl.tally_eps[1], cli, spub) is not None, "shard 1 answers a known key")


@test(timeout=60)
def test_bad_curve_key_file_refuses_to_start():
    d = make_tmpdir("curve-bad")
    with open(os.path.join(d, "only.pub"), "w") as f:
        f.write("not-a-key\n")
    for args, text in [(["--curve-key", os.path.join(d, "missing.key")], "cannot read key file"),
                       (["--curve-key", os.path.join(d, "only.pub")], "want \"public KEY\"")]:
        p = run([binary("canvass-tally"), "--data", os.path.join(d, "t"), "--bind",
                 "tcp://127.0.0.1:0", "--http", "off"] + args, timeout=20)
        eq(p.returncode, 2, "tally exit code with %r (%r)" % (args, p.stderr))
        check(text in p.stderr, "tally says why: %r" % p.stderr)


if __name__ == "__main__":
    main()
