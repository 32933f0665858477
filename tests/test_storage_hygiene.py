"""LMDB hygiene (issue 4): every store's files are private to the user who
runs the cluster (data files 0600), also after a crash and restart."""
import os
import stat

from harness import Cluster, eq, main, pb, test


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


if __name__ == "__main__":
    main()
