#!/usr/bin/env bash
# bench/run.sh: the one benchmark run behind `make bench` (issue 5, DESIGN B2).
#
# Sends the same vote stream (same seed, connections and depth) with
# canvass-loadgen to, in turn: Redis with AOF always, then everysec;
# PostgreSQL with synchronous commit; a Canvass cluster with --durability
# fsync, then os.  Every server is started here, on loopback, on free ports,
# with its data in a fresh temporary directory, and stopped afterwards.
# Then it times a cycle close over BENCH_CLOSE_FEATURES features and
# BENCH_RANKED_CALLS ranked queries, and writes bench/RESULTS.md (through
# bench/results.py) from the raw reports in bench/out/.
#
# Environment (defaults in brackets):
#   BENCH_VOTES [1000000]  BENCH_PG_VOTES [60000: PostgreSQL gets the first
#   votes of the same stream; at its rate the full count would take minutes]
#   BENCH_CONNECTIONS [50]  BENCH_DEPTH [32]  BENCH_USERS [100000]
#   BENCH_FEATURES [10000]  BENCH_ZIPF [1.1]  BENCH_DOWN_SHARE [0.15]
#   BENCH_RETRACT_SHARE [0.05]  BENCH_SEED [1]  BENCH_SHARDS [2]
#   BENCH_CLOSE_FEATURES [100000]  BENCH_RANKED_CALLS [200]
#   BENCH_LONG_VOTES [10000000]: votes of the long fsync run (canvass-long)
#   BENCH_SYSTEMS ["redis-always redis-everysec postgres canvass-fsync
#                   canvass-os canvass-half close canvass-long"]: a subset runs
#                   only those (canvass-half needs canvass-fsync before it)
#   BIN [bin], BUILD [build], LOADGEN [$BIN/canvass-loadgen], PYTHON [/usr/bin/python3]
#   BENCH_KEEP=1 keeps the temporary data directory.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${BIN:-bin}
BUILD=${BUILD:-build}
LOADGEN=${LOADGEN:-$BIN/canvass-loadgen}
PYTHON=${PYTHON:-/usr/bin/python3} # Debian's, with python3-zmq and python3-protobuf
VOTES=${BENCH_VOTES:-1000000}
PG_VOTES=${BENCH_PG_VOTES:-60000}
CONNECTIONS=${BENCH_CONNECTIONS:-50}
DEPTH=${BENCH_DEPTH:-32}
USERS=${BENCH_USERS:-100000}
FEATURES=${BENCH_FEATURES:-10000}
ZIPF=${BENCH_ZIPF:-1.1}
DOWN=${BENCH_DOWN_SHARE:-0.15}
RETRACT=${BENCH_RETRACT_SHARE:-0.05}
SEED=${BENCH_SEED:-1}
SHARDS=${BENCH_SHARDS:-2}
CLOSE_FEATURES=${BENCH_CLOSE_FEATURES:-100000}
RANKED_CALLS=${BENCH_RANKED_CALLS:-200}
LONG_VOTES=${BENCH_LONG_VOTES:-10000000}
SYSTEMS=${BENCH_SYSTEMS:-redis-always redis-everysec postgres canvass-fsync canvass-os canvass-half close canvass-long}
OUT=bench/out
[ "$PG_VOTES" -gt "$VOTES" ] && PG_VOTES=$VOTES

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# ---- what is needed ------------------------------------------------------------

install_missing() {
    local missing=()
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    local sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null ||
        die "cannot install ${missing[*]}"
}
install_missing
for f in "$LOADGEN" "$BIN/canvass" "$BIN/canvass-tally" "$BUILD/gen/canvass_pb2.py"; do
    [ -e "$f" ] || die "$f is missing: run 'make bench' (or make all) first"
done
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

WORK=$(mktemp -d /tmp/canvass-bench.XXXXXX)
chmod 755 "$WORK" # the postgres user must reach its data directory
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.txt "$OUT"/*.log # this run's only
say "data in $WORK, raw reports in $OUT"

# ---- processes we started, and their end ----------------------------------------

REDIS_PID= REDIS_DIR= PG_DATA= CANVASS_PID= CANVASS_DIR=
AS_PG=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user (package postgresql)"
    AS_PG=(runuser -u postgres --)
fi

stop_redis() {
    [ -n "$REDIS_PID" ] || return 0
    kill "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    REDIS_PID=
    [ -n "${REDIS_DIR:-}" ] && cp "$REDIS_DIR/redis.log" "$OUT/$(basename "$REDIS_DIR").server.log"
    REDIS_DIR=
}
stop_pg() {
    [ -n "$PG_DATA" ] || return 0
    "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1
    cp "$(dirname "$PG_DATA")/postgres.log" "$OUT/postgres.server.log" 2>/dev/null
    PG_DATA=
}
stop_canvass() {
    [ -n "$CANVASS_PID" ] || return 0
    kill -TERM "$CANVASS_PID" 2>/dev/null
    wait "$CANVASS_PID" 2>/dev/null
    CANVASS_PID=
    [ -n "${CANVASS_DIR:-}" ] && cp "$CANVASS_DIR/up.log" "$OUT/$(basename "$CANVASS_DIR").up.log"
    CANVASS_DIR=
}
cleanup() {
    stop_redis
    stop_pg
    stop_canvass
    if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port base in 20000-59000 with `span` free ports on 127.0.0.1.
free_ports() {
    python3 - "$1" <<'EOF'
import random, socket, sys
span = int(sys.argv[1])
def free(p):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(200):
    base = random.randrange(20000, 59000)
    if all(free(base + i) for i in range(span)):
        print(base)
        sys.exit(0)
sys.exit("no free ports")
EOF
}

# ---- one loadgen run ------------------------------------------------------------

# run_loadgen NAME VOTES ARGS...: the stream, with the same parameters for
# every system; report to $OUT/NAME.json, text to $OUT/NAME.txt.
run_loadgen() {
    local name=$1 votes=$2
    shift 2
    say "$name: $votes votes"
    "$LOADGEN" --votes "$votes" --connections "$CONNECTIONS" --depth "$DEPTH" \
        --users "$USERS" --features "$FEATURES" --zipf "$ZIPF" --down-share "$DOWN" \
        --retract-share "$RETRACT" --seed "$SEED" --quiet --report "$OUT/$name.json" "$@" \
        >"$OUT/$name.txt" 2>"$OUT/$name.log"
    local rc=$?
    sed -n 's/^\(throughput\|latency us\|verify\):/  &/p' "$OUT/$name.txt" >&2
    [ $rc -eq 0 ] || say "$name: canvass-loadgen exited $rc (see $OUT/$name.txt and .log)"
    return 0
}

# extra NAME KEY JSON-VALUE: one measurement into $OUT/NAME.extra.json.
extra() {
    python3 - "$OUT/$1.extra.json" "$2" "$3" <<'EOF'
import json, os, sys
path, key, value = sys.argv[1:4]
d = json.load(open(path)) if os.path.exists(path) else {}
try:
    d[key] = json.loads(value)
except ValueError:
    d[key] = value
json.dump(d, open(path, "w"), indent=2)
EOF
}

# ---- Redis ------------------------------------------------------------------------

bench_redis() {
    local fsync=$1 name=redis-$1 port dir
    port=$(free_ports 1) || die "no free port"
    dir=$WORK/$name
    mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --appendonly yes \
        --appendfsync "$fsync" --save '' --protected-mode no --daemonize no \
        --logfile "$dir/redis.log" &
    REDIS_PID=$!
    REDIS_DIR=$dir
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    redis-cli -p "$port" ping >/dev/null 2>&1 || die "redis-server did not start (see $dir/redis.log)"
    run_loadgen "$name" "$VOTES" --target redis --server "127.0.0.1:$port"
    local stored
    stored=$(redis-cli -p "$port" eval "local n = 0
        for _, k in ipairs(redis.call('KEYS', 'votes:*')) do n = n + redis.call('HLEN', k) end
        return n" 0)
    stop_redis
    extra "$name" stored_votes "${stored:-0}"
    extra "$name" disk_bytes "$(du -s -B1 "$dir" | cut -f1)"
}

# ---- PostgreSQL --------------------------------------------------------------------

bench_pg() {
    local name=postgres port
    port=$(free_ports 1) || die "no free port"
    mkdir -p "$WORK/pg"
    [ ${#AS_PG[@]} -eq 0 ] || chown postgres "$WORK/pg"
    "${AS_PG[@]}" "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust -E UTF8 \
        >"$WORK/pg/initdb.log" 2>&1 || die "initdb failed (see $WORK/pg/initdb.log)"
    PG_DATA=$WORK/pg/data
    "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pg/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$WORK/pg \
            -c fsync=on -c synchronous_commit=on -c full_page_writes=on \
            -c max_connections=$((CONNECTIONS + 20))" start >/dev/null ||
        die "postgres did not start (see $WORK/pg/postgres.log)"
    local conn="host=127.0.0.1 port=$port user=postgres dbname=postgres"
    run_loadgen "$name" "$PG_VOTES" --target postgres --server "$conn"
    local psql=(psql -X -q -A -t -h 127.0.0.1 -p "$port" -U postgres -d postgres -c)
    extra "$name" stored_votes "$("${psql[@]}" "SELECT count(*) FROM votes WHERE value <> 0")"
    # The two tables with their indexes: the data directory's catalogs and
    # preallocated WAL would swamp a small run.
    extra "$name" disk_bytes "$("${psql[@]}" "SELECT pg_total_relation_size('votes')
        + pg_total_relation_size('counters')")"
    extra "$name" settings "\"$("${psql[@]}" "SELECT string_agg(name || '=' || setting, ' ')
        FROM pg_settings WHERE name IN ('fsync','synchronous_commit','wal_sync_method',
        'full_page_writes','shared_buffers')")\""
    stop_pg
}

# ---- Canvass -----------------------------------------------------------------------

# start_canvass DIR DURABILITY: a cluster on free ports; sets P.  The
# layout uses P..P+99 (clients, shards, publish, HTTP: see `canvass up --help`).
start_canvass() {
    local dir=$1 durability=$2
    P=$(free_ports 100) || die "no free ports"
    mkdir -p "$dir"
    "$BIN/canvass" up --data "$dir" --port-base "$P" --shards "$SHARDS" --schedule manual \
        --durability "$durability" >"$dir/up.log" 2>&1 &
    CANVASS_PID=$!
    CANVASS_DIR=$dir
    for _ in $(seq 300); do
        "$BIN/canvass" ping --server "127.0.0.1:$P" >/dev/null 2>&1 && return 0
        kill -0 "$CANVASS_PID" 2>/dev/null || break
        sleep 0.1
    done
    cp "$dir/up.log" "$OUT/$(basename "$dir").up.log"
    die "the canvass cluster did not start (see $OUT/$(basename "$dir").up.log)"
}

# Anonymous resident memory of the cluster's tally processes, in bytes.
tally_anon_bytes() {
    local total=0 pid kb
    for pid in $(pgrep -P "$CANVASS_PID" -f canvass-tally); do
        kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        total=$((total + ${kb:-0} * 1024))
    done
    echo "$total"
}

# Non-zero votes in the stopped cluster's tally stores, counted from LMDB.
stored_votes() {
    local dir=$1 n=0 d c
    for d in "$dir"/tally-*; do
        c=$("$BIN/canvass-tally" --data "$d" --dump-votes 2>/dev/null | grep -vc '^#')
        n=$((n + c))
    done
    echo "$n"
}

bench_canvass() {
    local durability=$1 name=canvass-$1 dir=$WORK/canvass-$1
    start_canvass "$dir" "$durability"
    run_loadgen "$name" "$VOTES" --target canvass --server "127.0.0.1:$P" \
        --publish "127.0.0.1:$((P + 21))"
    extra "$name" tally_anon_bytes "$(tally_anon_bytes)"
    if [ "$durability" = fsync ]; then
        extra "$name" close "$("$PYTHON" bench/admin_timing.py "$BUILD/gen" "127.0.0.1:$((P + 21))" close)"
        extra "$name" ranked "$("$PYTHON" bench/admin_timing.py "$BUILD/gen" "127.0.0.1:$((P + 21))" \
            ranked "$RANKED_CALLS" 100)"
        # The same query through the CLI, process start included.
        extra "$name" ranked_cli "$(python3 - "$BIN/canvass" "127.0.0.1:$((P + 21))" "$RANKED_CALLS" <<'EOF'
import json, subprocess, sys, time
cli, pub, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for _ in range(calls):
    t0 = time.perf_counter()
    subprocess.run([cli, "ranked", "--cycle", "latest", "--limit", "100", "--publish", pub],
                   stdout=subprocess.DEVNULL, check=True)
    times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(json.dumps({"calls": calls, "p50_ms": round(times[len(times) // 2], 3),
                  "p99_ms": round(times[int(len(times) * 0.99) - 1], 3)}))
EOF
)"
    fi
    stop_canvass
    # Blocks in use, not apparent sizes: LMDB's map file is sparse.
    extra "$name" disk_bytes "$(du -sc -B1 "$dir"/tally-* | tail -1 | cut -f1)"
    extra "$name" stored_votes "$(stored_votes "$dir")"
}

# p99 at half the peak: a fresh fsync cluster offered half the votes/s the
# canvass-fsync run acknowledged, with --rate.
bench_half() {
    local name=canvass-half dir=$WORK/canvass-half peak
    peak=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["acked_votes_per_s"]))' \
        "$OUT/canvass-fsync.json" 2>/dev/null) || { say "half: no canvass-fsync report"; return 0; }
    start_canvass "$dir" fsync
    run_loadgen "$name" "$VOTES" --target canvass --server "127.0.0.1:$P" \
        --publish "127.0.0.1:$((P + 21))" --rate $((peak / 2))
    stop_canvass
}

# A long fsync run (LONG_VOTES, 10 million by default): the rate of each
# tenth, tally's anonymous memory at the end, disk per stored vote.
bench_long() {
    local name=canvass-long dir=$WORK/canvass-long
    start_canvass "$dir" fsync
    run_loadgen "$name" "$LONG_VOTES" --target canvass --server "127.0.0.1:$P" \
        --publish "127.0.0.1:$((P + 21))" --verify-timeout 120
    extra "$name" tally_anon_bytes "$(tally_anon_bytes)"
    stop_canvass
    extra "$name" disk_bytes "$(du -sc -B1 "$dir"/tally-* | tail -1 | cut -f1)"
    extra "$name" stored_votes "$(stored_votes "$dir")"
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$dir"
}

# A close over many features: a fresh fsync cluster, CLOSE_FEATURES
# features created and voted on, then one CloseNow timed.
bench_close() {
    local name=close dir=$WORK/canvass-close
    start_canvass "$dir" fsync
    say "close: $CLOSE_FEATURES features"
    "$LOADGEN" --server "127.0.0.1:$P" --publish "127.0.0.1:$((P + 21))" \
        --features "$CLOSE_FEATURES" --votes "$CLOSE_FEATURES" --zipf 0 --users "$USERS" \
        --connections "$CONNECTIONS" --depth "$DEPTH" --seed "$SEED" --quiet \
        --report "$OUT/close.json" >"$OUT/close.txt" 2>"$OUT/close.log" ||
        say "close: canvass-loadgen failed (see $OUT/close.txt)"
    extra "$name" close "$("$PYTHON" bench/admin_timing.py "$BUILD/gen" "127.0.0.1:$((P + 21))" close)"
    extra "$name" ranked "$("$PYTHON" bench/admin_timing.py "$BUILD/gen" "127.0.0.1:$((P + 21))" \
        ranked "$RANKED_CALLS" 100)"
    stop_canvass
}

# ---- the run -------------------------------------------------------------------------

START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for s in $SYSTEMS; do
    case $s in
    redis-always) bench_redis always ;;
    redis-everysec) bench_redis everysec ;;
    postgres) bench_pg ;;
    canvass-fsync) bench_canvass fsync ;;
    canvass-os) bench_canvass os ;;
    close) bench_close ;;
    canvass-half) bench_half ;;
    canvass-long) bench_long ;;
    *) die "unknown system '$s' in BENCH_SYSTEMS" ;;
    esac
done

# The machine and versions, for the results file.
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "elapsed_s=$(($(date +%s) - START))"
    echo "nproc=$(nproc)"
    echo "loadavg=$LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "memory=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "disk=$(df -PT "$WORK" | awk 'NR == 2 {print $1 " (" $2 "), " $3 / 1048576 " GiB"}' | sed 's/\(\.[0-9]\)[0-9]* GiB/\1 GiB/')"
    echo "redis=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
    echo "postgres=$("$PGBIN/postgres" --version | awk '{print $3}')"
    echo "libzmq=$(pkg-config --modversion libzmq 2>/dev/null || echo '?')"
    echo "lmdb=$(dpkg-query -W -f '${Version}' liblmdb-dev 2>/dev/null || echo '?')"
    echo "hiredis=$(dpkg-query -W -f '${Version}' libhiredis-dev 2>/dev/null || echo '?')"
    echo "libpq=$(dpkg-query -W -f '${Version}' libpq-dev 2>/dev/null || echo '?')"
    echo "gcc=$(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "votes=$VOTES"
    echo "long_votes=$LONG_VOTES"
    echo "pg_votes=$PG_VOTES"
    echo "connections=$CONNECTIONS"
    echo "depth=$DEPTH"
    echo "users=$USERS"
    echo "features=$FEATURES"
    echo "zipf=$ZIPF"
    echo "down_share=$DOWN"
    echo "retract_share=$RETRACT"
    echo "seed=$SEED"
    echo "shards=$SHARDS"
    echo "close_features=$CLOSE_FEATURES"
    echo "ranked_calls=$RANKED_CALLS"
} >"$OUT/machine.txt"

python3 bench/results.py "$OUT" bench/RESULTS.md || die "cannot write bench/RESULTS.md"
say "wrote bench/RESULTS.md in $(($(date +%s) - START)) s"
