#!/usr/bin/env bash
# Bounded fuzzing of the codec: each target for FUZZ_SECONDS (default 60).
#
#   FUZZ_SECONDS=60 bash ci/fuzz.sh [TARGET...]     (targets: srp pg exec knet legacy ipc)
#
# Needs cargo-fuzz (installed if missing); on the stable toolchain RUSTC_BOOTSTRAP lets it
# use the sanitizer flags it needs. The committed seed corpus is copied to a scratch
# directory (target/fuzz-corpus) so a run does not litter the tree; a crash is saved under
# protocol/fuzz/artifacts: add that input to protocol/fuzz/corpus/<target>/ so that
# `cargo test -p totem-wire` replays it forever after.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(srp pg exec knet legacy ipc)
for target in "${targets[@]}"; do
  scratch="target/fuzz-corpus/$target"
  mkdir -p "$scratch"
  cp -n protocol/fuzz/corpus/"$target"/* "$scratch"/ 2>/dev/null || true
  echo "== fuzz $target for ${FUZZ_SECONDS:-60}s"
  (cd protocol/wire && cargo fuzz run --fuzz-dir ../fuzz "$target" "../../$scratch" -- \
     -max_total_time="${FUZZ_SECONDS:-60}" -max_len=4096 2>&1 | grep -E '^(Done|==[0-9]+==|SUMMARY)|panicked' || true)
  [ -z "$(ls -A protocol/fuzz/artifacts/"$target" 2>/dev/null)" ] || { echo "fuzz $target: crash saved in protocol/fuzz/artifacts/$target" >&2; exit 1; }
done
