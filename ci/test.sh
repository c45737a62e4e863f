#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need, then runs the
# checks and the tests, then the conformance suite on every backend this machine can run
# (the simulator anywhere; as root also corosync, native totemd and mixed rings in network
# namespaces; a backend that cannot run is reported as skipped, never as passed).
set -euo pipefail
cd "$(dirname "$0")/.."
# A clean build never reuses incremental state; skipping it saves about a third of target/.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
bash ci/install-deps.sh
bash ci/check.sh
bash ci/conformance.sh
