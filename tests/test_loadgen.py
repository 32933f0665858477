"""bin/canvass-loadgen: the benchmark client runs against a real cluster,
reports only what was acknowledged, and its --verify catches standings that
differ from its own record."""
import json
import os
import subprocess
import time

from harness import (Cluster, Proc, binary, check, clean_env, eq, main, make_tmpdir, pb, run,
                     test, wait_until)


def loadgen_argv(cl, *args):
    return [binary("canvass-loadgen"), "--server", cl.server, "--publish", cl.publish_addr,
            "--quiet"] + list(args)


def loadgen(cl, *args, timeout=120):
    return run(loadgen_argv(cl, *args), timeout=timeout, env=clean_env())


@test(timeout=180)
def test_loadgen_run_reports_and_verifies():
    cl = Cluster(durability="os").start()
    report = os.path.join(make_tmpdir("loadgen"), "report.json")
    r = loadgen(cl, "--votes", "20000", "--features", "50", "--users", "500",
                "--connections", "8", "--depth", "16", "--report", report)
    eq(r.returncode, 0, "loadgen exit status (stdout %r, stderr %r)" % (r.stdout, r.stderr))
    check("verify: ok 50 features" in r.stdout, "no verify line in %r" % r.stdout)
    with open(report) as f:
        rep = json.load(f)
    eq(rep["votes_sent"], 20000, "votes sent")
    eq(rep["acked_ok"], 20000, "acknowledged votes")
    eq(rep["status"], {"OK": 20000}, "counts by status")
    eq(rep["latency_us"]["samples"], 20000, "latency samples")
    check(rep["acked_votes_per_s"] > 0, "no rate in %r" % rep)
    check(rep["latency_us"]["p50"] <= rep["latency_us"]["p99"] <= rep["latency_us"]["max"],
          "percentiles out of order: %r" % rep["latency_us"])
    eq(rep["verify"], "ok", "verify result")


@test(timeout=180)
def test_loadgen_verify_catches_a_foreign_vote():
    """A vote the loadgen did not send, on one of its features, must make
    --verify fail: the comparison is exact."""
    cl = Cluster(durability="os").start()
    p = subprocess.Popen(loadgen_argv(cl, "--duration", "4", "--features", "5"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                         text=True)
    target = []

    def loadgen_feature():
        rep = cl.admin(ranked=("live", 0, "score"))[0]
        ids = [e.feature_id for e in rep.ranked.entries if "loadgen" in list(e.tags)]
        target[:] = ids[:1]
        return bool(ids)
    wait_until(loadgen_feature, 10, "the loadgen's features")
    with cl.client() as c:
        rep = c.vote("intruder", target[0], 1)
    eq(rep.status, pb.OK, "foreign vote")
    out, err = p.communicate(timeout=60)
    eq(p.returncode, 1, "loadgen exit status (stdout %r, stderr %r)" % (out, err))
    check("verify: %s: cluster has up" % target[0] in out, "no mismatch line in %r" % out)
    check("verify: FAILED, 1 of 5 features differ" in out, "no verdict in %r" % out)


@test(timeout=180)
def test_loadgen_survives_ingest_kill9():
    cl = Cluster(durability="os").start()
    p = subprocess.Popen(loadgen_argv(cl, "--duration", "5", "--features", "100"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                         text=True)
    time.sleep(1.5)
    cl.ingest.kill9()
    time.sleep(0.5)
    cl.ingest.start()
    out, err = p.communicate(timeout=90)
    eq(p.returncode, 0, "loadgen exit status (stdout %r, stderr %r)" % (out, err))
    check("verify: ok 100 features" in out, "no verify line in %r" % out)
    check("reconnects 0," not in out, "no reconnect reported in %r" % out)


@test(timeout=60)
def test_loadgen_refuses_verify_without_setup():
    r = run([binary("canvass-loadgen"), "--setup=off", "--feature-file", "/dev/null"],
            timeout=10, env=clean_env())
    eq(r.returncode, 2, "exit status")
    check("--verify needs --setup" in r.stderr, "no reason in %r" % r.stderr)


if __name__ == "__main__":
    main()
