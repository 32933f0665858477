#!/usr/bin/env python3
"""Times publish's release-manager API (DESIGN A7) over its REP socket.

    admin_timing.py GEN_DIR ENDPOINT close
        one CloseNow; prints {"close_ms": ..., "entries": ..., "status": ...}
    admin_timing.py GEN_DIR ENDPOINT ranked CALLS [LIMIT]
        CALLS x RankedQuery{cycle "latest", limit LIMIT (100)}; prints the
        round-trip p50 / p99 / max in ms, from send to the reply received.

This is what `canvass cycle close` and `canvass ranked --cycle latest
--limit 100` ask, without the cost of starting a process per call, so the
figures are the server's answer time plus one loopback round trip.
"""
import json
import sys
import time

sys.path.insert(0, sys.argv[1])
import zmq  # noqa: E402
import canvass_pb2 as pb  # noqa: E402


def ask(sock, req, timeout_ms=60000):
    t0 = time.perf_counter()
    sock.send(req.SerializeToString())
    if not sock.poll(timeout_ms):
        raise SystemExit("admin_timing: publish did not answer within %d ms" % timeout_ms)
    data = sock.recv()
    ms = (time.perf_counter() - t0) * 1000.0  # the answer is in: decoding is ours
    rep = pb.AdminReply()
    rep.ParseFromString(data)
    return ms, rep


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(-(-q * len(xs) // 1)) - 1))]


def main():
    endpoint, what = sys.argv[2], sys.argv[3]
    if "://" not in endpoint:
        endpoint = "tcp://" + endpoint
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    status = pb.Status.Name
    if what == "close":
        req = pb.AdminRequest()
        req.close.SetInParent()
        ms, rep = ask(sock, req)
        out = {"close_ms": round(ms, 3), "status": status(rep.status), "error": rep.error}
        if rep.HasField("closed"):
            out["cycle"] = rep.closed.cycle
            out["entries"] = rep.closed.entries
            out["total_votes"] = rep.closed.total_votes
    elif what == "ranked":
        calls = int(sys.argv[4])
        limit = int(sys.argv[5]) if len(sys.argv) > 5 else 100
        req = pb.AdminRequest()
        req.ranked.cycle = "latest"
        req.ranked.limit = limit
        times, entries, bad = [], 0, 0
        for _ in range(calls):
            ms, rep = ask(sock, req)
            times.append(ms)
            if rep.status != pb.OK:
                bad += 1
            entries = len(rep.ranked.entries)
        out = {"calls": calls, "limit": limit, "entries": entries, "not_ok": bad,
               "p50_ms": round(quantile(times, 0.5), 3), "p99_ms": round(quantile(times, 0.99), 3),
               "max_ms": round(max(times), 3)}
    else:
        raise SystemExit("admin_timing: unknown request " + what)
    print(json.dumps(out))
    sock.close()
    ctx.term()


if __name__ == "__main__":
    main()
