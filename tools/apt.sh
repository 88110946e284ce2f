#!/usr/bin/env bash
# Installs the Debian packages the tests, demo and benchmarks use, only when one is missing.
set -euo pipefail
pkgs=(bind9-dnsutils knot-dnsutils dnsperf nsd knot unbound iproute2 openssl procps)
# Render hooks: the real consumers of the shipped examples (tests start their own).
pkgs+=(dnsdist haproxy nginx-light)
# podman/buildah build the image without a daemon; debootstrap makes its base where no registry
# serves one; util-linux has unshare, which enters the image in the image test.
pkgs+=(podman buildah debootstrap util-linux)
# iptables: the image test's hostPort pod sits behind the DNAT a CNI's portmap would set up.
pkgs+=(iptables)
# Zone transfers: BIND 9 as a third real secondary (NSD and Knot are above).
pkgs+=(bind9)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "apt: all present"; exit 0; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "apt: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged daemons must not hold ports or run in the background: tests start their own.
for svc in nsd knot named unbound dnsdist haproxy nginx; do $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true; \
  $SUDO service "$svc" stop >/dev/null 2>&1 || true; done
