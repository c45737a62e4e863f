#!/usr/bin/env bash
# Runs the conformance suite against real corosync 3.1.7: one network namespace per node,
# on this machine only (10.200.0.0/24 exists only inside the namespaces). Needs root.
#
#   ci/conformance-real.sh                 # default set (scenarios tagged `long` left out)
#   ci/conformance-real.sh --include-long  # everything
#   REPORT_DIR=out ci/conformance-real.sh  # where the HTML report, pcaps and logs go
#
# Extra arguments are passed to `totem-conform run`. Exit status: 0 when nothing failed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "conformance-real: needs root (network namespaces, bind mounts)" >&2
    exit 1
fi

bash ci/install-corosync.sh

TARGET="${CARGO_TARGET_DIR:-target}"
REPORT="$(realpath -m "${REPORT_DIR:-$TARGET/conformance}")"
cargo build -p totem-conformance -p totem-conform-agent
BIN="$TARGET/debug/totem-conform"

# Namespaces or daemons left by an interrupted earlier run would only confuse this one.
"$BIN" cleanup

status=0
"$BIN" run --backend corosync --report "$REPORT" --junit "$REPORT/junit.xml" "$@" || status=$?

# Unit, CLI and snapshot tests (the snapshot tests drive real corosync too when root).
cargo test -p totem-conformance -p totem-conform-agent || status=$?

"$BIN" cleanup >/dev/null
echo "conformance-real: report in $REPORT/index.html (exit $status)"
exit "$status"
