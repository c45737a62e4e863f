#!/usr/bin/env bash
# Re-records fixtures/ipc (see its README): an unmodified libcpg client (cpgclient.c) and
# corosync-cpgtool against Debian 12's corosync 3.1.7, once with the default shm transport
# and once with `qb_ipc_type: socket`, through `totem-inspect record-ipc`. Needs root (network
# namespaces), gcc, libcpg-dev, corosync. Run from anywhere; builds what it needs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out="$root/fixtures/ipc"
work=$(mktemp -d /tmp/ipc-fixtures.XXXXXX)
target=${CARGO_TARGET_DIR:-$root/target}
cleanup() {
    "$here/corosync-single.sh" stop ipcfix-sock "$work/sock" || true
    "$here/corosync-single.sh" stop ipcfix-shm "$work/shm" || true
    rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && cargo build -p totem-inspect -p totem-ipc-record)
gcc -Wall -Wextra -O1 -o "$work/cpgclient" "$here/cpgclient.c" -lcpg -lpthread
inspect="$target/debug/totem-inspect"
mkdir -p "$out"

"$here/corosync-single.sh" start ipcfix-sock "$work/sock" socket
"$here/corosync-single.sh" run ipcfix-sock -- "$inspect" record-ipc -o "$out/cpgclient-socket.pcapng" \
    -- "$work/cpgclient" fixture 2 1048000 >"$out/cpgclient-socket.out"
"$here/corosync-single.sh" run ipcfix-sock -- "$inspect" record-ipc -o "$out/cpgtool-socket.pcapng" \
    -- corosync-cpgtool >/dev/null

"$here/corosync-single.sh" start ipcfix-shm "$work/shm" shm
"$here/corosync-single.sh" run ipcfix-shm -- "$inspect" record-ipc -o "$out/cpgclient-shm.pcapng" \
    -- "$work/cpgclient" fixture 1 0 >"$out/cpgclient-shm.out"
ls -l "$out"
