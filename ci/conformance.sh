#!/usr/bin/env bash
# The main job: the conformance suite. Always on the embedded simulator (`sim`: our Totem
# engine in virtual time, no root, no corosync). As root it also runs, in network
# namespaces, real corosync 3.1.7 (`corosync`), our daemon on every node (`native`) and
# both in one ring (`mixed`) when corosync and libcpg are installed (CONFORMANCE_INSTALL=1
# installs them with ci/install-corosync.sh).
#
#   ci/conformance.sh                   # default set (scenarios tagged `long` left out)
#   ci/conformance.sh --include-long    # everything
#   REPORT_DIR=out ci/conformance.sh    # where the HTML report, JUnit, traces go
#
# Extra arguments go to `totem-conform run`. Exit status 0 when nothing failed.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${CARGO_TARGET_DIR:-target}"
REPORT="$(realpath -m "${REPORT_DIR:-$TARGET/conformance}")"
backends=sim
if [ "$(id -u)" = 0 ]; then
    if [ "${CONFORMANCE_INSTALL:-0}" = 1 ]; then
        bash ci/install-corosync.sh
    fi
    # The real backend needs the daemon and the library its agent loads. Not `grep -q`:
    # it exits at the first match, ldconfig then dies of SIGPIPE, and under pipefail the
    # test fails, so the real backends were sometimes skipped without a word.
    if command -v corosync >/dev/null 2>&1 \
        && ldconfig -p 2>/dev/null | grep 'libcpg\.so\.4' >/dev/null; then
        backends=sim,corosync,native,mixed
    fi
fi
echo "conformance: backends $backends" >&2

cargo build -q -p totem-conformance -p totem-conform-agent -p totemd -p totem-libevs
BIN="$TARGET/debug/totem-conform"
# EVS scenarios drive our C libevs (corosync 1.4's API) through the agent, as CPG ones
# drive the system's libcpg.
export TOTEM_CONFORM_LIBEVS="${TOTEM_CONFORM_LIBEVS:-$(realpath "$TARGET/debug/libevs.so")}"
case "$backends" in *corosync*) "$BIN" cleanup >/dev/null ;; esac

status=0
"$BIN" run --backend "$backends" --report "$REPORT" --junit "$REPORT/junit.xml" "$@" || status=$?
case "$backends" in *corosync*) "$BIN" cleanup >/dev/null ;; esac
echo "conformance: report in $REPORT/index.html (exit $status)"
exit "$status"
