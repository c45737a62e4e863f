#!/usr/bin/env bash
# Ring benchmark of issue #5 item 5: the same cpgbench-like ladder on a 3-node ring (udpu, or knet) of
# corosync 3.1.7 and on a 3-node ring of totemd, on this machine, in one run.
#
# Run `ci/bench-ring.sh --help` for the options. Needs root (network namespaces, bind
# mounts), /usr/sbin/corosync (ci/install-corosync.sh), iproute2 and jq.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: ci/bench-ring.sh [options]

Builds totem-cpgbench and totemd (release), then for corosync and then totemd: starts a
3-node ring (udpu or --transport knet) in network namespaces (node N = 10.200.0.1N, one private /run each, the
same corosync.conf template for both daemons), runs the ladder with one client on node 1,
stops the ring. Each ladder is OUT/<daemon>.r<round>.jsonl (one JSON line per size, see
`totem-cpgbench run --help`); daemon logs are under OUT/work/. Prints a table of both
ladders with the ratios totemd/corosync (msgs/s and p99 latency) and writes
OUT/results.json. Namespaces and processes are removed on every exit.

  --duration S     measured seconds per size (default 4)
  --warmup S       unmeasured seconds before each size (default 0.5)
  --sizes LIST     comma-separated sizes (default 64,320,1600,8000,40000,200000)
  --window N       at most N own messages in flight (sent, not yet delivered back to the
                   sender); default 0 = unbounded, the flood of cpgbench.c
  --rounds N       run corosync then totemd N times, fresh rings each time; the table
                   and ratios use per-size medians (default 1)
  --load           also run a client on nodes 2 and 3 (all three send; the ladder
                   reported is node 1's)
  --pingpong       after the ladder, the same sizes again with one message in flight
                   (send, wait for its delivery, send): unloaded latency; second table,
                   `pingpong` in results.json
  --totemd-rr      start totemd under `chrt -r 99`, the SCHED_RR priority corosync gives
                   itself (corosync.conf sched_rr default), for a totemd that does not
                   (the policy each daemon ran with is in OUT/*.cpu.txt and results.json)
  --only D         run one daemon only: corosync or totemd
  --transport T    udpu (default) or knet (corosync 3's default; crypto off unless --crypto), for both rings
  --crypto M/C/H   knet crypto for both rings (with --transport knet): crypto_model M,
                   crypto_cipher C, crypto_hash H (e.g. nss/aes256/sha256), one 256-byte
                   random authkey for every node
  --ipc TYPE       libqb IPC type of both daemons' clients: shm (corosync's default) or
                   socket (system.qb_ipc_type; default shm)
  --pcap[=SIZE]    after the ladder, capture 1 s of SIZE-byte traffic (default 1600) on
                   the bridge and write `totem-inspect stats` of it (OUT/<daemon>.r<round>.stats.txt)
  --perf           record the node-1 daemon with perf during the ladder
                   (OUT/<daemon>.r<round>.perf.txt)
  --out DIR        results directory (default target/bench-ring)
  --no-build       use the binaries already in $CARGO_TARGET_DIR/release (or target/release)
  -h, --help       this text

Exit status: 0 when both ladders ran (whatever the numbers), 1 when one could not run,
2 on a usage or environment error. The target (totemd >= 1.2x corosync's msgs/s at
every size, p99 no worse) is reported in the table, not asserted.
EOF
}

duration=4 warmup=0.5 sizes=64,320,1600,8000,40000,200000 window=0 rounds=1 load=0 pingpong=0 only="" pcap=0 perf=0 totemd_rr=0 pcap_size=1600
out=target/bench-ring build=1 ipc=shm transport=udpu crypto=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --duration) duration=${2:?}; shift ;;
    --warmup) warmup=${2:?}; shift ;;
    --sizes) sizes=${2:?}; shift ;;
    --window) window=${2:?}; shift ;;
    --ipc) ipc=${2:?}; shift
      case "$ipc" in shm|socket) ;; *) echo "--ipc: shm or socket, not $ipc" >&2; exit 2 ;; esac ;;
    --rounds) rounds=${2:?}; shift ;;
    --transport) transport=${2:?}; shift
      case "$transport" in udpu|knet) ;; *) echo "--transport: udpu or knet, not $transport" >&2; exit 2 ;; esac ;;
    --crypto) crypto=${2:?}; shift
      case "$crypto" in */*/*) ;; *) echo "--crypto: MODEL/CIPHER/HASH, not $crypto" >&2; exit 2 ;; esac ;;
    --load) load=1 ;;
    --pingpong) pingpong=1 ;;
    --only) only=${2:?}; shift
            case "$only" in corosync|totemd) ;; *) echo "--only: corosync or totemd" >&2; exit 2 ;; esac ;;
    --pcap) pcap=1 ;;
    --pcap=*) pcap=1; pcap_size=${1#--pcap=} ;;
    --totemd-rr) totemd_rr=1 ;;
    --perf) perf=1 ;;
    --out) out=${2:?}; shift ;;
    --no-build) build=0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ -n "$crypto" ] && [ "$transport" != knet ]; then echo "--crypto needs --transport knet" >&2; exit 2; fi
case "$rounds" in ''|*[!0-9]*|0) echo "--rounds: a positive integer" >&2; exit 2 ;; esac
case "$window" in ''|*[!0-9]*) echo "--window: a number of messages" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, bind mounts)" >&2; exit 2; }
for p in ip jq; do command -v "$p" >/dev/null || { echo "$p is needed" >&2; exit 2; }; done
if [ "$only" != totemd ] && [ ! -x /usr/sbin/corosync ]; then
  echo "/usr/sbin/corosync not found (run ci/install-corosync.sh)" >&2; exit 2
fi
if [ "$pcap" = 1 ] && ! command -v tcpdump >/dev/null; then echo "--pcap needs tcpdump" >&2; exit 2; fi
if [ "$perf" = 1 ] && ! command -v perf >/dev/null; then echo "--perf needs perf" >&2; exit 2; fi

bin=${CARGO_TARGET_DIR:-target}/release
if [ "$build" = 1 ]; then
  pkgs=(-p totem-conform-agent --bin totem-cpgbench -p totemd --bin totemd)
  [ "$pcap" = 1 ] && pkgs+=(-p totem-inspect --bin totem-inspect)
  cargo build --release -q "${pkgs[@]}"
fi
bench=$(realpath "$bin/totem-cpgbench")
totemd=$(realpath "$bin/totemd")
[ -x "$bench" ] && [ -x "$totemd" ] || { echo "binaries missing in $bin" >&2; exit 2; }

mkdir -p "$out"
out=$(realpath "$out")
work="$out/work"
rm -rf "$work"
mkdir -p "$work"

# ---- namespaces and processes, all removed by the trap -------------------------------------
prefix="tcb$$-"
hub="${prefix}h"
namespaces=()
pids=()          # every process started (daemons, clients, tcpdump, perf), by pid
daemon_pids=()   # the ring running now

cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  clean_shm "${pids[@]}"
  pids=()
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  namespaces=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A process that was waited for is no longer ours: its pid may be reused, never kill it.
forget() {
  local keep=() p q gone
  for p in "${pids[@]}"; do
    gone=0
    for q in "$@"; do [ "$p" = "$q" ] && gone=1; done
    [ "$gone" = 1 ] || keep+=("$p")
  done
  pids=("${keep[@]}")
}

# Files a killed corosync or libqb client leaves in /dev/shm (corosync-lab.md gotcha 5).
clean_shm() {
  local p
  for p in "$@"; do
    rm -rf /dev/shm/qb-"$p"-* /dev/shm/qb-corosync-"$p"-* 2>/dev/null || true
  done
}

node_ns() { echo "${prefix}n$1"; }

make_net() {
  ip netns add "$hub"; namespaces+=("$hub")
  ip -n "$hub" link set lo up
  ip -n "$hub" link add br0 type bridge
  ip -n "$hub" link set br0 up
  local n ns
  for n in 1 2 3; do
    ns=$(node_ns "$n")
    ip netns add "$ns"; namespaces+=("$ns")
    ip -n "$ns" link set lo up
    ip -n "$ns" link add eth0 type veth peer name "v$n" netns "$hub"
    ip -n "$ns" addr add "10.200.0.1$n/24" dev eth0
    ip -n "$ns" link set eth0 up
    # As in the conformance lab: eth0 cuts UDP GSO sends itself, like a NIC without UDP
    # segmentation offload, instead of passing them uncut through the bridge.
    ip netns exec "$ns" ethtool -K eth0 tx-udp-segmentation off >/dev/null 2>&1 || true
    ip -n "$hub" link set "v$n" master br0
    ip -n "$hub" link set "v$n" up
  done
}

# corosync.conf from the conformance template, $transport, default timings (both daemons read it).
render_conf() { # dir
  local tmpl nodelist n
  tmpl=$(cat fixtures/corosync/corosync.conf.tmpl)
  nodelist=""
  for n in 1 2 3; do
    nodelist+=$'\tnode {\n\t\tring0_addr: 10.200.0.1'"$n"$'\n\t\tnodeid: '"$n"$'\n\t}\n'
  done
  tmpl=${tmpl//'{{transport}}'/$transport}
  if [ -n "$crypto" ]; then
    [ -f "$work/authkey" ] || head -c 256 /dev/urandom >"$work/authkey"
    tmpl=${tmpl//$'\tcrypto_cipher: none\n\tcrypto_hash: none'/$'\tcrypto_model: '"${crypto%%/*}"$'\n\tcrypto_cipher: '"$(echo "$crypto" | cut -d/ -f2)"$'\n\tcrypto_hash: '"${crypto##*/}"$'\n\tkeyfile: '"$work/authkey"}
  fi
  tmpl=${tmpl//'{{totem_timings}}'/}
  tmpl=${tmpl//'{{nodelist}}'/$nodelist}
  tmpl=${tmpl//'{{logfile}}'/$1/log/corosync.log}
  tmpl=${tmpl//'{{state_dir}}'/$1/state}
  tmpl=${tmpl//'{{ipc}}'/$ipc}
  printf '%s\n' "$tmpl"
}

start_ring() { # daemon
  local d=$1 n nd ns cmd rr=""
  [ "$totemd_rr" = 1 ] && rr="chrt -r 99 "
  daemon_pids=()
  for n in 1 2 3; do
    nd="$ringdir/n$n"
    mkdir -p "$nd/run" "$nd/state" "$nd/log"
    render_conf "$nd" >"$nd/corosync.conf"
    if [ "$d" = corosync ]; then
      cmd="/usr/sbin/corosync -f -c '$nd/corosync.conf'"
    else
      cmd="$rr'$totemd' -f -c '$nd/corosync.conf' --status-file '$nd/state/status.json'"
    fi
    ns=$(node_ns "$n")
    # ip netns exec and sh both exec: $! is the daemon itself.
    ip netns exec "$ns" sh -c "mount --bind '$nd/run' /run && exec $cmd" \
      </dev/null >"$nd/log/stdout" 2>&1 &
    pids+=($!); daemon_pids+=($!)
  done
}

ring_members() { # daemon node -> number of members seen by that node (0 if not ready)
  local d=$1 n=$2
  if [ "$d" = corosync ]; then
    ip netns exec "$(node_ns "$n")" corosync-cmapctl -b runtime.members 2>/dev/null \
      | grep -c '\.status (str) = joined' || true
  else
    jq -r 'if .state == "operational" and .synced == true then (.members | length) else 0 end' \
      "$ringdir/n$n/state/status.json" 2>/dev/null || echo 0
  fi
}

wait_ring() { # daemon
  local d=$1 n ok t
  for t in $(seq 300); do
    ok=1
    for p in "${daemon_pids[@]}"; do
      kill -0 "$p" 2>/dev/null || { echo "$d: a daemon exited (see $ringdir/n*/log)" >&2; return 1; }
    done
    for n in 1 2 3; do [ "$(ring_members "$d" "$n")" = 3 ] || ok=0; done
    if [ "$ok" = 1 ]; then echo "$d: ring of 3 after $((t / 10)).$((t % 10)) s"; return 0; fi
    sleep 0.1
  done
  echo "$d: no ring of 3 within 30 s" >&2
  return 1
}

# CPU seconds (user+system) each daemon of the ring has used, and its scheduling policy.
cpu_report() { # daemon
  local n=0 p st tck
  tck=$(getconf CLK_TCK)
  for p in "${daemon_pids[@]}"; do
    n=$((n + 1))
    st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    # fields after the command: 12 = utime, 13 = stime (stat(5) 14, 15), 39 = policy (41)
    echo "$st" | awk -v n="$n" -v d="$1" -v t="$tck" \
      '{printf "%s n%d: cpu %.2f s (user %.2f, sys %.2f), policy %s\n", d, n, ($12+$13)/t, $12/t, $13/t, ($39==2?"SCHED_RR":($39==0?"SCHED_OTHER":$39))}'
  done
}

stop_ring() {
  local p t
  for p in "${daemon_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for t in $(seq 100); do
    alive=0
    for p in "${daemon_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${daemon_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  forget "${daemon_pids[@]}"
  clean_shm "${daemon_pids[@]}"
  daemon_pids=()
}

bench_args() { # daemon members [outstanding]
  echo run --label "$1" --duration "$duration" --warmup "$warmup" --sizes "$sizes" --members "$2" \
    --outstanding "${3:-$window}"
}

run_daemon() { # daemon round -> OUT/<daemon>.r<round>.jsonl
  local d=$1 r=$2 members=1 n pid perf_pid="" cpids=() rc=0 f
  f="$out/$d.r$r"
  ringdir="$work/$d.r$r"
  [ "$load" = 1 ] && members=3
  start_ring "$d"
  if ! wait_ring "$d"; then
    echo "{\"event\":\"error\",\"error\":\"$d: the ring did not form\"}" >"$f.jsonl"
    stop_ring; return 1
  fi
  if [ "$perf" = 1 ]; then
    perf record -g -o "$f.perf.data" -p "${daemon_pids[0]}" >/dev/null 2>&1 &
    perf_pid=$!; pids+=("$perf_pid")
  fi
  if [ "$load" = 1 ]; then
    for n in 2 3; do
      # shellcheck disable=SC2046
      ip netns exec "$(node_ns "$n")" "$bench" $(bench_args "$d-n$n" "$members") \
        >"$f.n$n.jsonl" 2>"$f.n$n.stderr" </dev/null &
      pids+=($!); cpids+=($!)
    done
  fi
  echo "$d (round $r): ladder $sizes, ${duration} s each$([ "$load" = 1 ] && echo ', clients on all 3 nodes')"
  # shellcheck disable=SC2046
  ip netns exec "$(node_ns 1)" "$bench" $(bench_args "$d" "$members") \
    >"$f.jsonl" 2>"$f.stderr" </dev/null &
  pid=$!; pids+=("$pid")
  wait "$pid" || rc=$?
  forget "$pid"
  for pid in "${cpids[@]}"; do wait "$pid" || true; forget "$pid"; done
  cpu_report "$d" | tee "$f.cpu.txt"   # the ladder's CPU (plus ring start-up)
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" 2>/dev/null || true
    forget "$perf_pid"
    perf report -i "$f.perf.data" --stdio --no-children -g none --sort dso,sym \
      --percent-limit 0.5 >"$f.perf.txt" 2>/dev/null || true
  fi
  if [ "$pingpong" = 1 ] && [ "$rc" = 0 ]; then
    echo "$d: ping-pong ladder (one message in flight)"
    # shellcheck disable=SC2046
    ip netns exec "$(node_ns 1)" "$bench" $(bench_args "$d" 1 1) \
      >"$f.pingpong.jsonl" 2>"$f.pingpong.stderr" </dev/null &
    pid=$!; pids+=("$pid")
    wait "$pid" || true
    forget "$pid"
  fi
  if [ "$pcap" = 1 ] && [ "$rc" = 0 ]; then
    ip netns exec "$hub" tcpdump -i br0 -B 65536 -Z root -U -w "$f.pcap" \
      >/dev/null 2>"$f.tcpdump.stderr" </dev/null &
    pid=$!; pids+=("$pid")
    sleep 1
    ip netns exec "$(node_ns 1)" "$bench" run --label "$d" --duration 1 --warmup 0.2 \
      --outstanding "$window" --sizes "$pcap_size" >/dev/null 2>&1 </dev/null || true
    kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    forget "$pid"
    "$bin/totem-inspect" stats "$f.pcap" >"$f.stats.txt" 2>&1 || true
  fi
  stop_ring
  [ "$rc" = 0 ] || { echo "$d: the ladder failed: $(tail -n 1 "$f.jsonl" 2>/dev/null)" >&2; return 1; }
  jq -r 'select(.event == "error") | "'"$d"': \(.error)"' "$f.jsonl" >&2 || true
}

rm -f "$out"/corosync.* "$out"/totemd.* "$out"/results.json
make_net
status=0
for r in $(seq "$rounds"); do
  for d in corosync totemd; do
    [ -n "$only" ] && [ "$only" != "$d" ] && continue
    run_daemon "$d" "$r" || status=1
  done
done
cleanup

files() { # daemon [suffix] -> --base/--candidate arguments, one per round
  local flag=$1 d=$2 sfx=${3:-} r
  for r in $(seq "$rounds"); do printf '%s\n' "$flag" "$out/$d.r$r$sfx.jsonl"; done
}

meta=(
  --meta "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  --meta "host_cpus=$(nproc)"
  --meta "kernel=$(uname -r)"
  --meta "corosync=$(/usr/sbin/corosync -v 2>/dev/null | head -n 1 || echo none)"
  --meta "git=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo +dirty)"
  --meta "duration_s=$duration" --meta "warmup_s=$warmup" --meta "load=$load" --meta "window=$window" --meta "rounds=$rounds"
  --meta "transport=$transport" --meta "crypto=${crypto:-none}" --meta "nodes=3" --meta "ipc=$ipc"
)
echo
mapfile -t cargs < <(files --base corosync; files --candidate totemd)
"$bench" compare "${cargs[@]}" --json "$out/results.json" "${meta[@]}"
if [ "$pingpong" = 1 ]; then
  echo
  echo "ping-pong (one message in flight; msg/s = 1 / round trip):"
  mapfile -t cargs < <(files --base corosync .pingpong; files --candidate totemd .pingpong)
  "$bench" compare "${cargs[@]}" --json "$out/pingpong.json" "${meta[@]}"
  jq -s '.[0] + {pingpong: .[1]}' "$out/results.json" "$out/pingpong.json" >"$out/results.tmp"
  mv "$out/results.tmp" "$out/results.json"
  rm -f "$out/pingpong.json"
fi
# The CPU and scheduling policy of every daemon, per ladder.
jq -R -s 'split("\n") | map(select(length > 0))' "$out"/*.cpu.txt >"$out/cpu.tmp" 2>/dev/null \
  && jq --slurpfile cpu "$out/cpu.tmp" '. + {daemon_cpu: $cpu[0]}' "$out/results.json" >"$out/results.tmp" \
  && mv "$out/results.tmp" "$out/results.json"
rm -f "$out/cpu.tmp" "$out/results.tmp"
echo
echo "results: $out/results.json"
exit "$status"
