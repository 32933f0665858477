"""bin/canvass release-manager commands on features (DESIGN A7, issue 3):
feature show / status / merge / voters, features, export, and the movers
line under a ranked table -- run against a real two-shard cluster."""
import csv
import io
import json
import os
import re

from harness import Cluster, check, eq, main, make_tmpdir, parse_csv, test

ARROW_UP, ARROW_DOWN = "\u25b2", "\u25bc"


def ok(p, what):
    eq(p.returncode, 0, "%s: exit code (stdout %r, stderr %r)" % (what, p.stdout[-300:],
                                                                  p.stderr[-300:]))
    return p.stdout


def fails(p, what, rc, must_contain):
    eq(p.returncode, rc, "%s: exit code (stdout %r, stderr %r)" % (what, p.stdout[-300:],
                                                                   p.stderr[-300:]))
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    eq(len(lines), 1, "%s: lines of reason on stderr (%r)" % (what, p.stderr))
    check(lines[0].startswith("canvass: ") and must_contain in lines[0],
          "%s: reason %r lacks %r" % (what, lines[0], must_contain))


def submit(cl, user, title, *extra):
    return ok(cl.cli("submit", "--user", user, *extra, title), "submit %r" % title).strip()


def vote(cl, user, fid, how="up", tier="member"):
    ok(cl.cli("vote", "--user", user, "--tier", tier, fid, how), "vote %s %s" % (user, fid))


@test(timeout=180)
def test_release_week_through_the_cli():
    """Propose, vote, close, plan, ship, merge a duplicate, list voters and
    export: every step's output, and counts equal to a recount by hand."""
    with Cluster(shards=2) as cl:
        dark = submit(cl, "alice", "Dark mode for settings", "--tag", "ui",
                      "--body", "Every page.\nEven about.")
        theme = submit(cl, "bob", "Dark theme please")
        call = submit(cl, "carol", "Call recording")
        # votes: (user, feature, value, tier)
        for u in ("u1", "u2", "u3"):
            vote(cl, u, dark)
        vote(cl, "u4", dark, tier="honorary")
        for u in ("u1", "u2", "u5", "u6"):
            vote(cl, u, theme)
        vote(cl, "u3", theme, "down")
        for u in ("u1", "u2", "u3", "u4", "u5", "u6", "u7"):
            vote(cl, u, call)
        ok(cl.cli("cycle", "close"), "close 1")
        table = ok(cl.cli("ranked"), "ranked 1")
        check("biggest movers" not in table, "movers line in the first cycle: %r" % table)

        # cycle 2: the theme duplicate climbs over call recording
        for u in ("u7", "u8", "u9", "u10", "u11", "u12", "u13"):
            vote(cl, u, theme)
        ok(cl.cli("cycle", "close"), "close 2")
        table = ok(cl.cli("ranked"), "ranked 2")
        movers = [x for x in table.splitlines() if x.startswith("biggest movers: ")]
        eq(movers, ["biggest movers: %s %s1 (3 \u2192 2), %s %s1 (2 \u2192 3)" %
                    (theme, ARROW_UP, call, ARROW_DOWN)], "movers line of cycle 2")
        for fmt in ("json", "csv"):
            out = ok(cl.cli("ranked", "--format", fmt), "ranked --format " + fmt)
            check("biggest movers" not in out, "movers line in %s output" % fmt)

        # plan and ship: the text says how many voters will be told
        eq(ok(cl.cli("feature", "status", call, "planned"), "plan"),
           "%s is now planned; 7 voters will be told\n" % call, "status planned")
        eq(ok(cl.cli("feature", "status", call, "shipped", "--release", "2026.11.27"), "ship"),
           "%s is now shipped in 2026.11.27; 7 voters will be told\n" % call, "status shipped")
        eq(ok(cl.cli("feature", "status", call, "shipped", "--release", "2026.11.27"), "again"),
           "%s is already shipped in 2026.11.27; nothing changed, no one is told again\n" % call,
           "status shipped twice")
        fails(cl.cli("feature", "status", call, "bogus"), "bad status", 2, "planned")
        fails(cl.cli("feature", "status", call, "open", "--release", "x"), "release", 2,
              "shipped only")
        fails(cl.cli("feature", "status", "Fnope", "planned"), "missing", 1, "NOT_FOUND")

        show = ok(cl.cli("feature", "show", call), "show")
        check("  status    shipped in 2026.11.27\n" in show, "show status line: %r" % show)
        check(re.search(r"\n  \S+ \d\d:\d\d:\d\d UTC  planned\n", show) and
              re.search(r"\n  \S+ \d\d:\d\d:\d\d UTC  shipped in 2026\.11\.27\n", show),
              "status history lines: %r" % show)
        check(re.search(r"\n +1 +2 +7 +7 +0\n +2 +3 +7 +7 +0\n +live +- +not ranked \(shipped\)\n",
                        show), "rank history: %r" % show)
        j = json.loads(ok(cl.cli("feature", "show", call, "--format", "json"), "show json"))
        eq((j["status"], j["release"], j["voters"], [r["rank"] for r in j["ranks"]],
            j["live_rank"]), ("shipped", "2026.11.27", 7, [2, 3], None), "show json")
        show = ok(cl.cli("feature", "show", dark), "show dark")
        check("    Every page.\n    Even about.\n" in show, "indented body: %r" % show)
        check("  votes     4 up (member 3, honorary 1), 0 down\n" in show, "votes: %r" % show)
        check("  score     13 (weights member 1, core 3, honorary 10)\n" in show,
              "score: %r" % show)

        # merge the duplicate: u1, u2 voted on both (kept on dark), u3 voted
        # down on theme and up on dark (kept up)
        eq(ok(cl.cli("feature", "merge", theme, "into", dark), "merge"),
           "merged %s into %s: 9 votes moved, 3 users had voted on both (kept their vote on %s)\n"
           % (theme, dark, dark), "merge text")
        j = json.loads(ok(cl.cli("feature", "merge", theme, dark, "--format", "json"), "re-run"))
        eq((j["moved"], j["kept"]), (0, 0), "a re-run merge moves nothing")
        fails(cl.cli("feature", "merge", dark, dark), "self merge", 2, "itself")

        # voters, a page at a time and all of them
        page = ok(cl.cli("feature", "voters", dark, "--limit", "5"), "voters page")
        eq(len(page.splitlines()), 5, "one page of 5")
        p = cl.cli("feature", "voters", dark, "--limit", "5")
        check("--after" in p.stderr, "next-page hint on stderr: %r" % p.stderr)
        rows = parse_csv(ok(cl.cli("feature", "voters", dark, "--limit", "2", "--all",
                                   "--format", "csv"), "voters --all csv"))
        eq(rows[0], ["user_id", "value", "tier"], "voters csv header")
        want = sorted(["u%d" % i for i in range(1, 14)])
        eq(sorted(r[0] for r in rows[1:] if r), want, "every voter of dark after the merge")
        eq({r[0]: r[2] for r in rows[1:] if r}["u4"], "honorary", "u4's tier")
        j = json.loads(ok(cl.cli("feature", "voters", dark, "--limit", "4", "--all", "--format",
                                 "json"), "voters --all json"))
        eq((j["total"], j["next_after"], len(j["voters"])), (13, None, 13), "voters json")

        # the feature list
        rows = parse_csv(ok(cl.cli("features", "--format", "csv"), "features csv"))
        eq(rows[0], ["feature_id", "title", "status", "release", "merged_into", "author",
                     "created_at", "tags", "up", "down", "voters"], "features csv header")
        by_id = {r[0]: r for r in rows[1:] if r}
        eq(by_id[dark][2:5] + by_id[dark][8:], ["open", "", "", "13", "0", "13"], "dark row")
        eq(by_id[theme][2:5], ["merged", "", dark], "theme row")
        eq(by_id[call][2:4], ["shipped", "2026.11.27"], "call row")
        table = ok(cl.cli("features"), "features table")
        check(re.search(r"%s +merged \u2192 %s" % (theme, dark), table), "table: %r" % table)

        # export, and a recount of votes.csv against features.csv
        out = os.path.join(make_tmpdir("export"), "week48")
        eq(ok(cl.cli("export", "--out", out), "export"),
           "exported 3 features, 20 votes and 2 closed cycles to %s\n" % out, "export summary")
        eq(sorted(os.listdir(out)), ["cycles.json", "features.csv", "ranked", "votes.csv"],
           "export files")
        with open(os.path.join(out, "votes.csv")) as f:
            votes = list(csv.DictReader(f))
        with open(os.path.join(out, "features.csv")) as f:
            feats = list(csv.DictReader(f))
        for r in feats:
            if r["status"] == "merged":
                continue
            mine = [v for v in votes if v["feature_id"] == r["feature_id"]]
            eq((int(r["up"]), int(r["down"]), int(r["voters"])),
               (sum(v["value"] == "1" for v in mine), sum(v["value"] == "-1" for v in mine),
                len(mine)), "recount of %s" % r["feature_id"])
        for n in (1, 2):
            with open(os.path.join(out, "ranked", "cycle-%d.json" % n)) as f:
                eq(f.read(), ok(cl.cli("ranked", "--cycle", str(n), "--format", "json"), "r"),
                   "ranked/cycle-%d.json is the ranked json of cycle %d" % (n, n))
        with open(os.path.join(out, "cycles.json")) as f:
            eq([c["state"] for c in json.load(f)["cycles"]], ["closed", "closed", "open"],
               "cycles.json")
        blocker = os.path.join(make_tmpdir("export"), "a-file")
        open(blocker, "w").close()
        fails(cl.cli("export", "--out", os.path.join(blocker, "x")), "unwritable", 1,
              "Not a directory")
        fails(cl.cli("export"), "no --out", 2, "--out")


@test(timeout=60)
def test_feature_commands_help_and_usage():
    """--help everywhere, usage errors exit 2 with one line."""
    with Cluster(shards=1) as cl:
        for s in (["feature"], ["feature", "show"], ["feature", "status"], ["feature", "merge"],
                  ["feature", "voters"], ["features"], ["export"]):
            out = ok(cl.cli(*(s + ["--help"])), " ".join(s) + " --help")
            check(out.startswith("usage: canvass " + " ".join(s)), "%s --help: %r" % (s, out))
        top = ok(cl.cli("--help"), "--help")
        for c in ("feature  show", "feature  status", "feature  merge", "feature  voters",
                  "features", "export"):
            check(c in top, "canvass --help lacks %r" % c)
        fails(cl.cli("feature", "show", "bad id!"), "bad id", 2, "not a feature id")
        fails(cl.cli("feature", "frobnicate"), "unknown", 2, "unknown feature command")
        fails(cl.cli("feature", "voters", "F1", "--format", "yaml"), "yaml", 2, "--format")
        fails(cl.cli("features", "--format", "xml"), "xml", 2, "table, json or csv")


if __name__ == "__main__":
    main()
