#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need, then runs the
# checks and the tests, then the real-corosync conformance scenarios (when root, which
# network namespaces need; elsewhere they are reported as skipped, never as passed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
bash ci/check.sh
if [ "$(id -u)" = 0 ]; then
    bash ci/conformance-real.sh
else
    echo "test: not root, real-corosync scenarios skipped (ci/conformance-real.sh needs root)"
fi
