#!/usr/bin/env bash
# Installs what the real-corosync conformance backend needs (Debian/Ubuntu, as root):
# corosync 3.1.7 and its client libraries (the agent loads libcpg.so.4 at run time; the
# -dev packages give the headers the FFI declarations were written from), libqb, libpcap
# and tcpdump (ring captures in --report), iproute2 (network namespaces).
# Idempotent: does nothing when everything is installed already.
set -euo pipefail

PKGS=(corosync libcpg-dev libcfg-dev libcmap-dev libquorum-dev libvotequorum-dev libqb-dev
      libpcap-dev tcpdump iproute2)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-corosync: all packages present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
echo "install-corosync: installing ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
# The corosync package starts a service where systemd runs; the suite starts its own
# daemons in namespaces and does not use it.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
