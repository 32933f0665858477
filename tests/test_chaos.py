"""The short form of `make chaos` (tests/chaos/chaos.py): every kind of
fault at least once under load, then every acknowledged vote checked
against the store, the counters against a recount, the closed cycles
against their bytes at close, and descriptors and memory against bounds."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "chaos"))

from chaos import FAULTS, Chaos  # noqa: E402
from harness import check, eq, main, test  # noqa: E402


@test(timeout=300)
def test_chaos_short():
    seed = int(os.environ.get("CHAOS_SEED", "20261125"))
    r = Chaos(duration=float(os.environ.get("CHAOS_SHORT_SECONDS", "25")), seed=seed,
              log=lambda s: print(s)).run()
    print("     " + r["summary"])
    print("     faults %r, client stats %r" % (r["faults"], r["stats"]))
    for kind in FAULTS:
        check(r["faults"][kind] >= 1, "fault %s never ran: %r" % (kind, r["faults"]))
    check(r["acked"] > 1000, "only %d votes acknowledged under faults" % r["acked"])
    eq(r["lost"], 0, "acknowledged votes lost (seed %d)" % seed)
    eq(r["double"], 0, "votes counted twice or counters off (seed %d)" % seed)
    eq(r["leaks"], [], "descriptor or memory growth")


if __name__ == "__main__":
    main()
