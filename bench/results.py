#!/usr/bin/env python3
"""Writes bench/RESULTS.md from the raw reports of one bench/run.sh run.

    results.py OUT_DIR RESULTS_MD

OUT_DIR holds, per system, NAME.json (canvass-loadgen's report) and
NAME.extra.json (what run.sh measured besides), and machine.txt (key=value:
the machine, the versions and the parameters).  Every figure in the file
comes from these; a target whose figure is missing is reported as not
measured, never as met.
"""
import json
import os
import sys

SYSTEMS = [  # name, system, mode
    ("redis-always", "Redis (Lua: hash + ZINCRBY)", "AOF appendfsync always"),
    ("redis-everysec", "Redis (Lua: hash + ZINCRBY)", "AOF appendfsync everysec"),
    ("postgres", "PostgreSQL (ON CONFLICT + counter upsert)", "synchronous_commit on"),
    ("canvass-fsync", "Canvass", "--durability fsync"),
    ("canvass-os", "Canvass", "--durability os"),
]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def rate(rep):
    return rep["acked_votes_per_s"] if rep and not rep.get("failure") else None


def fmt_ratio(a, b):
    return "%.2f×" % (a / b) if a and b else "–"


def ms(us):
    return "%.2f" % (us / 1000.0)


def main():
    out, dest = sys.argv[1], sys.argv[2]
    machine = {}
    with open(os.path.join(out, "machine.txt")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            machine[k] = v
    reps = {n: load(os.path.join(out, n + ".json")) for n, _, _ in SYSTEMS}
    extra = {n: load(os.path.join(out, n + ".extra.json")) or {}
             for n, _, _ in SYSTEMS + [("close", 0, 0), ("canvass-long", 0, 0)]}
    half, long_ = load(os.path.join(out, "canvass-half.json")), load(os.path.join(out, "canvass-long.json"))
    r_always, r_every, r_pg = rate(reps["redis-always"]), rate(reps["redis-everysec"]), rate(reps["postgres"])
    c_fsync, c_os = rate(reps["canvass-fsync"]), rate(reps["canvass-os"])

    L = []
    L.append("# Benchmark results")
    L.append("")
    L.append("Written by `make bench` (bench/run.sh, bench/results.py) on %s; the whole run took %s s. "
             "Raw reports: bench/out/ (not committed).  Load average (1, 5, 15 min) %s: anything "
             "else running on the machine shows in every figure." % (machine.get("date"), machine.get("elapsed_s"),
                                                                    machine.get("loadavg", "?")))
    L.append("")
    L.append("Every system got the same vote stream from `canvass-loadgen` (same seed, so the same "
             "sequence of (feature, user, value)), over the same connections and pipeline depth, and "
             "every run was checked afterwards: the loadgen compared its own record of acknowledged "
             "votes with the store's counters (`verify`).  Throughput is acknowledged votes per second; "
             "latency is from a vote's send to its acknowledgement.")
    L.append("")
    L.append("| System | Mode | Votes | Acked votes/s | p50 ms | p99 ms | p99.9 ms | vs Redis always | vs Redis everysec | vs PostgreSQL | Verify |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n, system, mode in SYSTEMS:
        rep = reps[n]
        if not rep:
            L.append("| %s | %s | – | not run | | | | | | | |" % (system, mode))
            continue
        lat = rep["latency_us"]
        v = rate(rep)
        verify = rep.get("verify", "?")
        if rep.get("failure"):
            verify += " (run failed: %s)" % rep["failure"]
        elif verify == "ok":
            verify = "ok, %d features" % rep.get("verify_features", 0)
        L.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            system, mode, rep["votes_sent"], "%.0f" % v if v else "–", ms(lat["p50"]), ms(lat["p99"]),
            ms(lat["p999"]), fmt_ratio(v, r_always), fmt_ratio(v, r_every), fmt_ratio(v, r_pg), verify))
    L.append("")
    statuses = ["%s: %s" % (n, ", ".join("%s %d" % kv for kv in sorted(reps[n]["status"].items())))
                for n, _, _ in SYSTEMS if reps[n]]
    L.append("Reply statuses: " + "; ".join(statuses) + ".")
    L.append("")

    # ---- targets
    def target(name, ok, figure):
        state = "not measured" if ok is None else ("**met**" if ok else "**NOT met**")
        L.append("| %s | %s | %s |" % (name, figure, state))

    L.append("## Issue 5 / DESIGN targets")
    L.append("")
    L.append("| Target | Measured | |")
    L.append("|---|---|---|")
    target("Canvass fsync ≥ 2× Redis AOF always", c_fsync / r_always >= 2 if c_fsync and r_always else None,
           fmt_ratio(c_fsync, r_always))
    target("Canvass os ≥ 2× Redis AOF everysec", c_os / r_every >= 2 if c_os and r_every else None,
           fmt_ratio(c_os, r_every))
    target("Canvass fsync ≥ 10× PostgreSQL", c_fsync / r_pg >= 10 if c_fsync and r_pg else None,
           fmt_ratio(c_fsync, r_pg) + " (os: %s)" % fmt_ratio(c_os, r_pg))
    if half and half.get("offered_votes_per_s"):
        p99 = half["latency_us"]["p99"] / 1000.0
        target("p99 ack latency ≤ 10 ms at half of Canvass's peak rate", p99 <= 10,
               "fsync, %.0f votes/s offered (half of %.0f): p50 %s / p99 %s / p99.9 %s ms" % (
                   half["offered_votes_per_s"], c_fsync or 0, ms(half["latency_us"]["p50"]),
                   ms(half["latency_us"]["p99"]), ms(half["latency_us"]["p999"])))
    else:
        target("p99 ack latency ≤ 10 ms at half of Canvass's peak rate", None, "not run (canvass-half)")
    close = extra["close"].get("close")
    target("cycle close over %s features ≤ 200 ms" % machine.get("close_features"),
           close["close_ms"] <= 200 if close and close.get("status") == "OK" else None,
           "%.1f ms (%s entries)" % (close["close_ms"], close.get("entries")) if close else "–")
    ranked = extra["canvass-fsync"].get("ranked")
    cli = extra["canvass-fsync"].get("ranked_cli")
    ranked_big = extra["close"].get("ranked")
    parts = []
    if ranked:
        parts.append("publish's REP socket, after the close of %s features: p50 %.2f / p99 %.2f ms over %d calls"
                     % (machine.get("features"), ranked["p50_ms"], ranked["p99_ms"], ranked["calls"]))
    if cli:
        parts.append("the CLI, process start included: p50 %.1f / p99 %.1f ms" % (cli["p50_ms"], cli["p99_ms"]))
    if ranked_big:
        parts.append("after the close of %s features: p50 %.2f / p99 %.2f ms"
                     % (machine.get("close_features"), ranked_big["p50_ms"], ranked_big["p99_ms"]))
    target("`ranked --cycle latest --limit 100` p99 ≤ 2 ms",
           ranked["p99_ms"] <= 2 and not ranked["not_ok"] if ranked else None, "; ".join(parts) or "–")
    tenths = (long_ or {}).get("tenth_votes_per_s") or []
    if len(tenths) == 10:
        drop = (tenths[0] - tenths[9]) / tenths[0]
        target("last tenth of a %s-vote run within 20 %% of the first tenth" % machine.get("long_votes"),
               abs(drop) <= 0.20, "first %.0f, last %.0f votes/s (%+.1f %%); whole run %.0f votes/s, verify %s" % (
                   tenths[0], tenths[9], -100 * drop, rate(long_), long_.get("verify")))
    else:
        target("last tenth of a 10-million-vote run within 20 % of the first tenth", None, "not run (canvass-long)")
    ex = extra["canvass-long"] if extra["canvass-long"].get("stored_votes") else extra["canvass-fsync"]
    bpv = ex["disk_bytes"] / ex["stored_votes"] if ex.get("stored_votes") else None
    target("< 64 bytes of disk per stored vote", bpv < 64 if bpv else None,
           "%.0f bytes (%d bytes of tally stores / %d stored votes)" % (bpv, ex["disk_bytes"], ex["stored_votes"]) if bpv else "–")
    anon = extra["canvass-long"].get("tally_anon_bytes")
    if anon is not None:
        target("tally anonymous memory < 256 MiB at 10 million votes", anon < 256 * 2**20,
               "%.1f MiB over %s shards after %s votes" % (anon / 2**20, machine.get("shards"), machine.get("long_votes")))
    else:
        target("tally anonymous memory < 256 MiB at 10 million votes", None, "not run (canvass-long)")
    L.append("")

    L.append("## Disk per stored vote")
    L.append("")
    L.append("| System | Data bytes | Stored (non-zero) votes | Bytes per vote |")
    L.append("|---|---:|---:|---:|")
    for n, system, mode in SYSTEMS:
        e = extra[n]
        if e.get("stored_votes"):
            L.append("| %s, %s | %d | %d | %.0f |" % (system, mode, e["disk_bytes"], e["stored_votes"],
                                                      e["disk_bytes"] / e["stored_votes"]))
    L.append("")
    L.append("Disk blocks in use (`du -B1`, not apparent sizes).  Canvass: the tally shards' LMDB "
             "directories after the cluster stopped, votes recounted from the stores "
             "(`canvass-tally --dump-votes`).  Redis: its data directory (the AOF).  PostgreSQL: "
             "`pg_total_relation_size` of the votes and counters tables with their indexes (WAL "
             "not counted).")
    L.append("")

    L.append("## Parameters")
    L.append("")
    L.append("%s votes per system (PostgreSQL: the first %s votes of the same stream), %s connections × "
             "depth %s, %s users, %s features with Zipf exponent %s, down votes %s, retractions %s, "
             "seed %s; Canvass with %s tally shards, a fresh data directory per mode.  The close was timed "
             "on a fresh fsync cluster after %s features were created and voted on." % (
                 machine.get("votes"), machine.get("pg_votes"), machine.get("connections"), machine.get("depth"),
                 machine.get("users"), machine.get("features"), machine.get("zipf"), machine.get("down_share"),
                 machine.get("retract_share"), machine.get("seed"), machine.get("shards"),
                 machine.get("close_features")))
    if extra["postgres"].get("settings"):
        L.append("")
        L.append("PostgreSQL settings: `%s`." % extra["postgres"]["settings"])
    L.append("")
    L.append("## Machine and versions")
    L.append("")
    for k in ["nproc", "loadavg", "cpu", "memory", "kernel", "disk", "redis", "postgres", "libzmq", "lmdb", "hiredis",
              "libpq", "gcc", "commit"]:
        L.append("- %s: %s" % (k, machine.get(k, "?")))
    L.append("")
    with open(dest, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
