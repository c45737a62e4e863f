#!/usr/bin/env bash
# Bounded fuzzing of the codec: each target for FUZZ_SECONDS (default 60). Needs cargo-fuzz;
# on a stable toolchain RUSTC_BOOTSTRAP lets it use the sanitizer flags it needs.
# New findings land in protocol/fuzz/artifacts; add the input to protocol/fuzz/corpus so that
# `cargo test -p totem-wire` replays it forever after.
set -euo pipefail
cd "$(dirname "$0")/../protocol/fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in srp pg exec knet; do
  echo "== fuzz $target for ${FUZZ_SECONDS:-60}s"
  cargo fuzz run "$target" "corpus/$target" -- -max_total_time="${FUZZ_SECONDS:-60}" -max_len=4096
done
