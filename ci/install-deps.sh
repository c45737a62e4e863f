#!/usr/bin/env bash
# Everything the workspace's build and tests need on a fresh Debian/Ubuntu machine (as root,
# or with sudo): libpcap for totem-inspect (the `pcap` crate links it), tshark (the 1.x/2.x
# codec is checked against tshark's own dissector; the benchmark compares against it), GNU
# time (benchmark), gcc (the IPC recording test compiles a small libcpg client; libevs's
# tests compile corosync's EVS test programs), g++ (libevs's header is checked as C++),
# libssl-dev (evsverify.c's SHA-1 comes from libcrypto), ethtool (the namespaces' veths
# cut UDP GSO sends before the capture point), Pacemaker (its daemons, crm_mon and
# cibadmin, and the OCF shell functions its Dummy agent sources: totemd's Pacemaker test),
# and the corosync packages for the real-corosync conformance backend.
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")"

PKGS=(libpcap-dev tshark time gcc g++ libssl-dev ethtool
      pacemaker pacemaker-cli-utils resource-agents)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
./install-corosync.sh
