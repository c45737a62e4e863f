#!/usr/bin/env bash
# The checks every change must pass: formatting, no import cycle between the modules of a
# crate (ci/module-cycles.py), clippy with warnings as errors, and the
# whole test suite (codec, inspector, conformance runner; the real-corosync scenarios run in
# ci/conformance-real.sh). CI never writes insta snapshots (INSTA_UPDATE=no).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
python3 ci/module-cycles.py
cargo clippy --workspace --all-targets -- -D warnings
INSTA_UPDATE=no cargo test --workspace
