"""LMDB hygiene (issue 4): every store's files are private to the user who
runs the cluster (data files 0600, directories the services or `canvass up`
create 0700), also after a crash and restart."""
import os
import stat
import time

from harness import (HOST, Client, Cluster, Proc, admin_call, binary, check, eq, free_port_base,
                     main, make_admin, make_tmpdir, pb, test)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@test(timeout=90)
def test_store_files_are_private():
    cl = Cluster(shards=1).start()
    with cl.client() as c:
        r = c.submit("author", "Hygiene")
        eq(r.status, pb.OK, "submit")
        eq(c.vote("u", r.submitted.feature_id, 1).status, pb.OK, "vote")
    stores = [cl.tally_dir(0), os.path.join(cl.dir, "publish")]
    for d in stores:  # (the directories were made by the harness; cv_store makes them 0700)
        for f in ("data.mdb", "lock.mdb"):
            eq(oct(mode(os.path.join(d, f))), oct(0o600), "mode of %s/%s" % (d, f))
    cl.kill_shard(0)
    cl.start_shard(0)
    with cl.client() as c:
        eq(c.vote("v", r.submitted.feature_id, 1).status, pb.OK, "vote after the restart")
    for f in ("data.mdb", "lock.mdb"):
        eq(oct(mode(os.path.join(cl.tally_dir(0), f))), oct(0o600), "mode after a restart")
    rcs = cl.stop()
    eq(set(rcs.values()), {0}, "exit codes")


def data_arg(proc, path):
    """Points proc's --data at path (a directory that does not exist yet)."""
    i = proc.argv.index("--data")
    proc.argv[i + 1] = path


def private_store(d, what):
    eq(oct(mode(d)), oct(0o700), "mode of %s directory %s" % (what, d))
    for f in ("data.mdb", "lock.mdb"):
        eq(oct(mode(os.path.join(d, f))), oct(0o600), "mode of %s/%s" % (d, f))


@test(timeout=90)
def test_services_create_private_directories():
    """A tally or publish whose data directory (and its parents) does not
    exist makes them 0700, not the umask's 0755."""
    cl = Cluster(shards=1)
    fresh = os.path.join(cl.dir, "fresh", "deeper")
    data_arg(cl.tallies[0], os.path.join(fresh, "tally-0"))
    data_arg(cl.publish, os.path.join(fresh, "publish"))
    cl.start()
    with cl.client() as c:
        r = c.submit("author", "Fresh dirs")
        eq(r.status, pb.OK, "submit")
    for d in (os.path.join(cl.dir, "fresh"), fresh):
        eq(oct(mode(d)), oct(0o700), "mode of parent %s" % d)
    private_store(os.path.join(fresh, "tally-0"), "tally")
    private_store(os.path.join(fresh, "publish"), "publish")
    rcs = cl.stop()
    eq(set(rcs.values()), {0}, "exit codes")


@test(timeout=120)
def test_up_creates_private_directories():
    """`canvass up --data DIR` (DIR new): DIR, its parents and every
    service's directory 0700, store files 0600."""
    base = free_port_base([0, 10, 20, 21, 80, 81, 82])
    root = make_tmpdir("up")
    data = os.path.join(root, "new", "var")
    up = Proc("canvass-up", [binary("canvass"), "up", "--data", data, "--shards", "1",
                             "--port-base", str(base)], os.path.join(root, "up.log")).start()
    deadline = time.monotonic() + 60
    while True:
        check(up.alive(), "canvass up exited with %s" % up.p.poll())
        try:
            with Client(HOST, base, timeout=2) as c:
                r = c.submit("author", "Up dirs")
            rep, _ = admin_call("tcp://%s:%d" % (HOST, base + 21), make_admin(cycles=True), 1)
            if r.status == pb.OK and rep.status == pb.OK:
                break
        except (OSError, AssertionError):
            pass
        check(time.monotonic() < deadline, "canvass up not ready in 60 s")
        time.sleep(0.2)
    for d in (os.path.join(root, "new"), data):
        eq(oct(mode(d)), oct(0o700), "mode of %s" % d)
    private_store(os.path.join(data, "tally-0"), "tally")
    private_store(os.path.join(data, "publish"), "publish")
    eq(up.stop(30), 0, "canvass up exit code on SIGTERM")


if __name__ == "__main__":
    main()
