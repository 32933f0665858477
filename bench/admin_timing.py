#!/usr/bin/env python3
"""Times publish's release-manager API (DESIGN A7) over its REP socket.

    admin_timing.py GEN_DIR ENDPOINT close [CLOSES]
        CLOSES (1) x CloseNow, one after the other; prints
        {"close_ms": ..., "entries": ..., "status": ...} for one close, and
        for several also "closes_ms": every close's time and
        "close_p50_ms" / "close_max_ms" ("close_ms" is then the median)
    admin_timing.py GEN_DIR ENDPOINT ranked CALLS [LIMIT [ORDER [CYCLE]]]
        CALLS x RankedQuery{cycle CYCLE ("latest"), limit LIMIT (100), order
        ORDER ("" = score)}; prints the round-trip p50 / p99 / max in ms, from
        send to the reply received
    admin_timing.py GEN_DIR ENDPOINT cycles CALLS
        CALLS x CycleList; the same figures

This is what `canvass cycle close`, `canvass ranked --cycle latest --limit
100` and `canvass cycles` ask, without the cost of starting a process per
call, so the figures are the server's answer time plus one loopback round
trip.  Every call waits at most 60 s; a reply that is not OK is counted in
"not_ok" (ranked, cycles) or reported in "status" (close).
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


def timed_calls(sock, req, calls):
    """Runs req calls times; returns the times, the last reply and how many
    replies were not OK."""
    times, bad, rep = [], 0, None
    for _ in range(calls):
        ms, rep = ask(sock, req)
        times.append(ms)
        if rep.status != pb.OK:
            bad += 1
    return times, rep, bad


def figures(calls, times, bad):
    return {"calls": calls, "not_ok": bad, "p50_ms": round(quantile(times, 0.5), 3),
            "p99_ms": round(quantile(times, 0.99), 3), "max_ms": round(max(times), 3)}


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
        closes = int(sys.argv[4]) if len(sys.argv) > 4 else 1
        req = pb.AdminRequest()
        req.close.SetInParent()
        times = []
        for _ in range(closes):
            ms, rep = ask(sock, req)
            times.append(ms)
            if rep.status != pb.OK:
                break
        out = {"close_ms": round(quantile(times, 0.5), 3), "status": status(rep.status),
               "error": rep.error}
        if closes > 1:
            out.update({"closes_ms": [round(t, 3) for t in times],
                        "close_p50_ms": round(quantile(times, 0.5), 3),
                        "close_max_ms": round(max(times), 3)})
        if rep.HasField("closed"):
            out["cycle"] = rep.closed.cycle
            out["entries"] = rep.closed.entries
            out["total_votes"] = rep.closed.total_votes
    elif what == "ranked":
        calls = int(sys.argv[4])
        limit = int(sys.argv[5]) if len(sys.argv) > 5 else 100
        req = pb.AdminRequest()
        req.ranked.cycle = sys.argv[7] if len(sys.argv) > 7 else "latest"
        req.ranked.limit = limit
        req.ranked.order = sys.argv[6] if len(sys.argv) > 6 else ""
        times, rep, bad = timed_calls(sock, req, calls)
        out = {"calls": calls, "limit": limit, "entries": len(rep.ranked.entries)}
        if req.ranked.order or req.ranked.cycle != "latest":
            out.update({"order": req.ranked.order or "score", "cycle": req.ranked.cycle})
        out.update(figures(calls, times, bad))
    elif what == "cycles":
        calls = int(sys.argv[4])
        req = pb.AdminRequest()
        req.cycles.SetInParent()
        times, rep, bad = timed_calls(sock, req, calls)
        out = {"cycles": len(rep.cycles.cycles)}
        out.update(figures(calls, times, bad))
    else:
        raise SystemExit("admin_timing: unknown request " + what)
    print(json.dumps(out))
    sock.close()
    ctx.term()


if __name__ == "__main__":
    main()
