#!/usr/bin/env bash
# EVS benchmark: corosync 1.4.10's evsbench (fixtures/evs/evsbench.c, compiled unchanged
# against our libevs) on a 3-node totemd ring, next to the CPG ladder (totem-cpgbench over
# libcpg) on the same ring, in the same run.
#
# Run `ci/bench-evs.sh --help` for the options. Needs root (network namespaces), iproute2,
# jq, stdbuf (coreutils), a C compiler, and libcpg.so.4 for the CPG ladder
# (ci/install-corosync.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: ci/bench-evs.sh [options]

Builds libevs, totemd and totem-cpgbench (release) and evsbench (fixtures/evs, unchanged),
starts a 3-node totemd ring (udpu, nodes 10.200.0.1N in network namespaces), then per
round: evsbench on node 1 for its first N sizes, then the CPG ladder (totem-cpgbench run,
one client on node 1) over the same sizes. Prints per-size medians over the rounds.

evsbench cannot be configured: each size runs exactly 10 s (alarm), sizes 1, 1001, 2001,
... (225 of them); this script stops it (SIGINT, which it exits on) after N sizes. Its
figure is *accepted sends* per second (evs_mcast_joined calls that did not answer
CS_ERR_TRY_AGAIN, evs_dispatch(CS_DISPATCH_ALL) after each); totem-cpgbench counts *own
deliveries* per second with a dispatch thread. The CPG ladder uses max(size, 24) bytes
(its payload carries a 24-byte header).

  --sizes N        evsbench sizes to run: 1, 1001, ... (default 3, at most 225)
  --rounds R       rounds (default 3); the table shows per-size medians
  --duration S     measured seconds per CPG size (default 10, as evsbench)
  --ipc TYPE       libqb IPC type of totemd's clients: shm (default) or socket
  --out DIR        results directory (default target/bench-evs)
  --no-build       use the binaries already in $CARGO_TARGET_DIR/release (or target/release)
  -h, --help       this text

Output: OUT/evsbench.r<R>.txt (evsbench's own lines), OUT/cpg.r<R>.jsonl
(totem-cpgbench), OUT/results.json, and the table on stdout. Exit status 0 when both ran,
1 when one could not run, 2 on a usage or environment error.
EOF
}

nsizes=3 rounds=3 duration=10 ipc=shm out=target/bench-evs build=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --sizes) nsizes=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --duration) duration=${2:?}; shift ;;
    --ipc) ipc=${2:?}; shift
      case "$ipc" in shm|socket) ;; *) echo "--ipc: shm or socket, not $ipc" >&2; exit 2 ;; esac ;;
    --out) out=${2:?}; shift ;;
    --no-build) build=0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$nsizes" in ''|*[!0-9]*|0) echo "--sizes: a positive integer" >&2; exit 2 ;; esac
[ "$nsizes" -le 225 ] || { echo "--sizes: evsbench has 225 sizes" >&2; exit 2; }
case "$rounds" in ''|*[!0-9]*|0) echo "--rounds: a positive integer" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
for p in ip jq stdbuf "${CC:-cc}"; do
  command -v "$p" >/dev/null || { echo "$p is needed" >&2; exit 2; }
done

bin=${CARGO_TARGET_DIR:-target}/release
if [ "$build" = 1 ]; then
  # Two commands: a --bin filter would leave out totem-libevs's library (libevs.so).
  cargo build --release -q -p totem-libevs --lib
  cargo build --release -q -p totemd --bin totemd -p totem-conform-agent --bin totem-cpgbench
fi
totemd=$(realpath "$bin/totemd")
bench=$(realpath "$bin/totem-cpgbench")
[ -x "$totemd" ] && [ -x "$bench" ] && [ -f "$bin/libevs.so" ] \
  || { echo "binaries missing in $bin" >&2; exit 2; }
libdir=$(realpath "$bin")

mkdir -p "$out"
out=$(realpath "$out")
work="$out/work"
rm -rf "$work"
mkdir -p "$work/build/x"
rm -f "$out"/evsbench.r*.txt "$out"/cpg.r*.jsonl "$out"/results.json

# evsbench.c unchanged: an empty config.h, our headers, libevs.so found through its rpath.
: >"$work/build/config.h"
"${CC:-cc}" -O2 -Wall -I "$work/build" -I protocol/libevs/include -o "$work/build/evsbench" \
  fixtures/evs/evsbench.c -L "$libdir" -Wl,-rpath,"$libdir" -levs 2>"$work/build/cc.log" \
  || { cat "$work/build/cc.log" >&2; exit 2; }
evsbench="$work/build/evsbench"

# ---- namespaces and processes, all removed by the trap -------------------------------------
prefix="tbe$$-"
hub="${prefix}h"
namespaces=()
pids=()

cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  namespaces=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A process that was waited for is no longer ours: its pid may be reused, never kill it.
forget() {
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

node_ns() { echo "${prefix}n$1"; }

ip netns add "$hub"; namespaces+=("$hub")
ip -n "$hub" link set lo up
ip -n "$hub" link add br0 type bridge
ip -n "$hub" link set br0 up
for n in 1 2 3; do
  ns=$(node_ns "$n")
  ip netns add "$ns"; namespaces+=("$ns")
  ip -n "$ns" link set lo up
  ip -n "$ns" link add eth0 type veth peer name "v$n" netns "$hub"
  ip -n "$ns" addr add "10.200.0.1$n/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip netns exec "$ns" ethtool -K eth0 tx-udp-segmentation off >/dev/null 2>&1 || true
  ip -n "$hub" link set "v$n" master br0
  ip -n "$hub" link set "v$n" up
done

nodelist=""
for n in 1 2 3; do
  nodelist+=$'\tnode {\n\t\tring0_addr: 10.200.0.1'"$n"$'\n\t\tnodeid: '"$n"$'\n\t}\n'
done
for n in 1 2 3; do
  nd="$work/n$n"
  mkdir -p "$nd/state" "$nd/log"
  tmpl=$(cat fixtures/corosync/corosync.conf.tmpl)
  tmpl=${tmpl//'{{transport}}'/udpu}
  tmpl=${tmpl//'{{totem_timings}}'/}
  tmpl=${tmpl//'{{nodelist}}'/$nodelist}
  tmpl=${tmpl//'{{logfile}}'/$nd/log/corosync.log}
  tmpl=${tmpl//'{{state_dir}}'/$nd/state}
  tmpl=${tmpl//'{{ipc}}'/$ipc}
  printf '%s\n' "$tmpl" >"$nd/corosync.conf"
  ip netns exec "$(node_ns "$n")" "$totemd" -f -c "$nd/corosync.conf" \
    --status-file "$nd/state/status.json" </dev/null >"$nd/log/stdout" 2>&1 &
  pids+=($!)
done
daemons=("${pids[@]}")

ready=0
for t in $(seq 300); do
  ok=1
  for n in 1 2 3; do
    m=$(jq -r 'if .state == "operational" and .synced == true then (.members | length) else 0 end' \
      "$work/n$n/state/status.json" 2>/dev/null || echo 0)
    [ "$m" = 3 ] || ok=0
  done
  if [ "$ok" = 1 ]; then ready=1; echo "totemd: ring of 3 after $((t / 10)).$((t % 10)) s ($ipc IPC)"; break; fi
  sleep 0.1
done
[ "$ready" = 1 ] || { echo "totemd: no ring of 3 within 30 s (see $work/n*/log)" >&2; exit 1; }

sizes=()
for i in $(seq 0 $((nsizes - 1))); do sizes+=($((1 + 1000 * i))); done
cpg_sizes=$(for s in "${sizes[@]}"; do [ "$s" -lt 24 ] && echo 24 || echo "$s"; done | paste -sd,)

status=0
for r in $(seq "$rounds"); do
  f="$out/evsbench.r$r.txt"
  echo "round $r: evsbench, sizes ${sizes[*]} (10 s each)"
  # Created first: the loop below reads it before the background job has opened it.
  : >"$f"
  # Line-buffered, so that each size's line is in the file as soon as it is printed.
  ip netns exec "$(node_ns 1)" stdbuf -oL "$evsbench" </dev/null >"$f" 2>&1 &
  pid=$!; pids+=("$pid")
  limit=$((nsizes * 10 + 30))
  for _ in $(seq $((limit * 10))); do
    [ "$(grep -c 'bytes per write' "$f" || true)" -ge "$nsizes" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget "$pid"
  if [ "$(grep -c 'bytes per write' "$f" || true)" -lt "$nsizes" ]; then
    echo "evsbench (round $r) did not finish its sizes: $(tail -n 3 "$f")" >&2
    status=1
  fi

  echo "round $r: CPG ladder, sizes $cpg_sizes (${duration} s each)"
  ip netns exec "$(node_ns 1)" "$bench" run --label totemd-cpg --duration "$duration" \
    --warmup 0.5 --sizes "$cpg_sizes" --members 1 --outstanding 0 \
    </dev/null >"$out/cpg.r$r.jsonl" 2>"$out/cpg.r$r.stderr" || {
      echo "CPG ladder (round $r) failed: $(tail -n 2 "$out/cpg.r$r.stderr")" >&2; status=1; }
  for p in "${daemons[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "a totemd exited (see $work/n*/log)" >&2; exit 1; }
  done
done

# ---- the table: per-size medians over the rounds -------------------------------------------
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

rows=()
for i in "${!sizes[@]}"; do
  s=${sizes[$i]}
  cs=$s; [ "$cs" -lt 24 ] && cs=24
  # evsbench: "%5d Writes %5d bytes per write %7.3f Seconds runtime %9.3f TP/s %7.3f MB/s."
  evs_tps=$(awk -v s="$s" '/bytes per write/ && $3 == s {print $10}' "$out"/evsbench.r*.txt | median)
  evs_mbs=$(awk -v s="$s" '/bytes per write/ && $3 == s {print $12}' "$out"/evsbench.r*.txt | median)
  cpg_mps=$(jq -r --argjson s "$cs" 'select(.event == "size" and .size == $s) | .msgs_per_s' \
    "$out"/cpg.r*.jsonl 2>/dev/null | median)
  cpg_mbs=$(jq -r --argjson s "$cs" 'select(.event == "size" and .size == $s) | .mb_per_s' \
    "$out"/cpg.r*.jsonl 2>/dev/null | median)
  cpg_p50=$(jq -r --argjson s "$cs" 'select(.event == "size" and .size == $s) | .lat_p50_us' \
    "$out"/cpg.r*.jsonl 2>/dev/null | median)
  rows+=("$(jq -cn --argjson size "$s" --argjson cpg_size "$cs" \
    --arg et "$evs_tps" --arg em "$evs_mbs" --arg cm "$cpg_mps" --arg cb "$cpg_mbs" --arg cl "$cpg_p50" \
    '{size: $size, evs_sends_per_s: ($et | tonumber? // null), evs_mb_per_s: ($em | tonumber? // null),
      cpg_size: $cpg_size, cpg_msgs_per_s: ($cm | tonumber? // null), cpg_mb_per_s: ($cb | tonumber? // null),
      cpg_lat_p50_us: ($cl | tonumber? // null)}')")
done

printf '%s\n' "${rows[@]}" | jq -s \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" --argjson cpus "$(nproc)" \
  --arg git "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo +dirty)" \
  --argjson rounds "$rounds" --arg ipc "$ipc" --argjson duration "$duration" \
  '{meta: {date: $date, kernel: $kernel, host_cpus: $cpus, git: $git, rounds: $rounds, ipc: $ipc,
           nodes: 3, transport: "udpu", evsbench_s_per_size: 10, cpg_s_per_size: $duration},
    sizes: .}' >"$out/results.json"

echo
echo "3-node totemd ring, $ipc IPC, client on node 1; medians of $rounds round(s)"
echo "EVS = evsbench (accepted sends/s); CPG = totem-cpgbench (own deliveries/s)"
echo
printf '| %7s | %12s | %9s | %8s | %12s | %9s | %13s |\n' \
  size "EVS sends/s" "EVS MB/s" "CPG size" "CPG msgs/s" "CPG MB/s" "CPG p50 (us)"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ---------: -------------: ----------: ---------: -------------: ----------: --------------:
jq -r '.sizes[] | [.size, .evs_sends_per_s, .evs_mb_per_s, .cpg_size, .cpg_msgs_per_s, .cpg_mb_per_s, .cpg_lat_p50_us]
  | map(if . == null then "-" else . end) | @tsv' "$out/results.json" \
  | while IFS=$'\t' read -r s et em cs cm cb cl; do
      printf '| %7s | %12s | %9s | %8s | %12s | %9s | %13s |\n' "$s" "$et" "$em" "$cs" "$cm" "$cb" "$cl"
    done
echo
echo "results: $out/results.json"
exit "$status"
