#!/usr/bin/env bash
# The checks every change must pass: formatting, clippy with warnings as errors, and the
# whole test suite (codec, inspector, conformance runner; the real-corosync scenarios run in
# ci/conformance-real.sh). CI never writes insta snapshots (INSTA_UPDATE=no).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
INSTA_UPDATE=no cargo test --workspace
