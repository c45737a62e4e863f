#!/usr/bin/env bash
# totem-inspect against tshark on the same capture, in one run.
#
#   ci/bench-inspect.sh [FRAMES]      (default 250000; needs tshark and GNU time)
#
# Generates a realistic corosync 3 udpu capture with the codec (3-node ring, tokens,
# totempg-packed CPG messages, 64 KiB messages fragmented over 47 packets, one copy per peer)
# unless bench-out/bench-FRAMES.pcap exists, then times each view RUNS times (default 3) and
# reports the median, frames per second and the ratio to the tshark view it replaces. Peak
# memory is measured at FRAMES and at 4 x FRAMES frames to show that it stays flat.
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-250000}
runs=${RUNS:-3}
out=bench-out
mkdir -p "$out"
command -v tshark >/dev/null || { echo "tshark is needed: apt-get install tshark" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 2; }

cargo build --release -q -p totem-inspect --bin totem-inspect --example synth_capture
inspect=target/release/totem-inspect
synth=target/release/examples/synth_capture
capture="$out/bench-$frames.pcap"
[ -f "$capture" ] || "$synth" "$capture" "$frames"
actual=$(tshark -r "$capture" -T fields -e frame.number 2>/dev/null | tail -n 1)

# median wall seconds of RUNS runs of a command whose stdout is discarded
median() {
  local times=() tmp
  tmp=$(mktemp)
  for _ in $(seq "$runs"); do
    /usr/bin/time -f %e -o "$tmp" "$@" >/dev/null 2>/dev/null
    times+=("$(tail -n 1 "$tmp")")
  done
  rm -f "$tmp"
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
peak_kb() {
  local tmp
  tmp=$(mktemp)
  /usr/bin/time -f %M -o "$tmp" "$@" >/dev/null 2>/dev/null
  tail -n 1 "$tmp"
  rm -f "$tmp"
}

echo "capture: $capture ($actual frames, $(du -h "$capture" | cut -f1)); median of $runs runs"
t_ts_summary=$(median tshark -r "$capture")
t_ts_json=$(median tshark -r "$capture" -T json)
t_summary=$(median "$inspect" decode "$capture")
t_json=$(median "$inspect" decode --format json "$capture")
t_stats=$(median "$inspect" stats "$capture")

rate() { awk -v n="$actual" -v t="$1" 'BEGIN {printf "%.0f", n / t}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
printf '\n| tool and view | seconds | frames/s | vs tshark |\n|---|---|---|---|\n'
printf '| tshark -r (summary) | %s | %s | 1.0 |\n' "$t_ts_summary" "$(rate "$t_ts_summary")"
printf '| tshark -r -T json | %s | %s | 1.0 |\n' "$t_ts_json" "$(rate "$t_ts_json")"
printf '| totem-inspect decode | %s | %s | %sx tshark summary |\n' "$t_summary" "$(rate "$t_summary")" "$(ratio "$t_ts_summary" "$t_summary")"
printf '| totem-inspect decode --format json | %s | %s | %sx tshark -T json |\n' "$t_json" "$(rate "$t_json")" "$(ratio "$t_ts_json" "$t_json")"
printf '| totem-inspect stats | %s | %s | %sx tshark summary |\n' "$t_stats" "$(rate "$t_stats")" "$(ratio "$t_ts_summary" "$t_stats")"

big="$out/bench-$((frames * 4)).pcap"
[ -f "$big" ] || "$synth" "$big" "$((frames * 4))"
printf '\npeak RSS of totem-inspect decode --format json: %s KB at %s frames, %s KB at %s frames\n' \
  "$(peak_kb "$inspect" decode --format json "$capture")" "$frames" \
  "$(peak_kb "$inspect" decode --format json "$big")" "$((frames * 4))"
printf 'peak RSS of tshark -r: %s KB at %s frames, %s KB at %s frames\n' \
  "$(peak_kb tshark -r "$capture")" "$frames" "$(peak_kb tshark -r "$big")" "$((frames * 4))"
