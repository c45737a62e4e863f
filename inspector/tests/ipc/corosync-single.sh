#!/usr/bin/env bash
# A single-node corosync 3.1.7 (udpu on 127.0.0.1) in its own network namespace, for the
# IPC recording tests. CPG's IPC sockets are abstract unix sockets, which exist per network
# namespace, so clients must run inside it too ("run"). corosync has a compiled-in
# /run/corosync.pid (corosync-lab.md, gotcha 1): it gets a private /run by a bind mount in
# the mount namespace that `ip netns exec` creates for it. Needs root.
#
#   corosync-single.sh start NS DIR socket|shm   start corosync, wait until CPG answers
#   corosync-single.sh run NS -- CMD ARGS...       run CMD inside the namespace
#   corosync-single.sh stop NS DIR                 stop corosync, remove the namespace
set -euo pipefail

cmd=${1:?usage: corosync-single.sh start|run|stop NS ...}
ns=${2:?namespace}

case "$cmd" in
start)
    dir=${3:?directory}
    ipc=${4:-socket}
    case "$ipc" in socket) ipc_type=socket ;; shm) ipc_type=shm ;; *) echo "ipc type $ipc?" >&2; exit 2 ;; esac
    mkdir -p "$dir/state" "$dir/run"
    cat >"$dir/corosync.conf" <<EOF
totem {
	version: 2
	cluster_name: ipcrec
	transport: udpu
	crypto_cipher: none
	crypto_hash: none
}
nodelist {
	node {
		ring0_addr: 127.0.0.1
		nodeid: 1
	}
}
logging {
	to_logfile: yes
	logfile: $dir/corosync.log
	to_stderr: no
	to_syslog: no
	timestamp: hires
}
system {
	state_dir: $dir/state
	qb_ipc_type: $ipc_type
}
EOF
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
    # -f: stay in the foreground, so $! is corosync itself (after the exec) and its pid is
    # ours to stop; nothing else is ever signalled.
    ip netns exec "$ns" sh -c "mount --bind '$dir/run' /run && exec corosync -f -c '$dir/corosync.conf'" \
        >"$dir/corosync.out" 2>&1 &
    echo $! >"$dir/corosync.pid"
    for _ in $(seq 1 100); do
        if grep -q "Completed service synchronization" "$dir/corosync.log" 2>/dev/null \
            && ip netns exec "$ns" corosync-cpgtool >/dev/null 2>&1; then
            exit 0
        fi
        sleep 0.1
    done
    echo "corosync did not come up; log:" >&2
    cat "$dir/corosync.log" "$dir/corosync.out" >&2 || true
    exit 1
    ;;
run)
    shift 2
    [ "${1:-}" = "--" ] && shift
    exec ip netns exec "$ns" "$@"
    ;;
stop)
    dir=${3:?directory}
    if [ -f "$dir/corosync.pid" ]; then
        pid=$(cat "$dir/corosync.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/corosync.pid"
        # A killed corosync leaves its libqb directories and blackbox in /dev/shm
        # (corosync-lab.md, gotcha 5); they carry its pid in the name.
        rm -rf /dev/shm/qb-"$pid"-* /dev/shm/qb-corosync-"$pid"-* 2>/dev/null || true
    fi
    ip netns delete "$ns" 2>/dev/null || true
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
