#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for cidrun, builds it, then runs `make run` or `make test`.
#   sudo bash scripts/bootstrap.sh run    # the demo: a busybox root added and run from its CID
#   sudo bash scripts/bootstrap.sh test   # every test (unit, integration, interop)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-run}
case "$target" in run|test|build) ;; *) echo "usage: $0 run|test|build" >&2; exit 2 ;; esac

if [ "$(id -u)" -ne 0 ]; then echo "bootstrap: run as root (it installs packages)" >&2; exit 1; fi

# Build tools and libraries; the runtime's peers (runc, crun, podman) for tests and benchmarks;
# containerd, whose runc shim the containerd tests run cidrun under, and umoci, which packs the
# OCI archive they import;
# what `run` networks containers with (the CNI plugins, iptables that their rules go through,
# nft that shows them, slirp4netns for rootless containers); tools the tests drive (script,
# python3, tar, diffutils; gzip, pigz and zstd, whose output the stream tests decode and the tar
# tests cross-read; tinyproxy and microsocks, the real HTTP and SOCKS5 proxies the proxy tests
# pull through, and stunnel4, whose TLS in front of tinyproxy makes a real HTTPS proxy, all
# started by the tests themselves on loopback ports; skopeo, the converter the image tests
# compare with, beside umoci, the reference unpacker; attr, libcap2-bin and acl, whose setfattr,
# setcap and setfacl give test roots xattrs, file capabilities and ACLs; debootstrap, which makes
# the Debian root the image tests pack into layers); clang 14 and libFuzzer, which build the
# fuzz targets (tests/fuzz) that the fuzz.* tests run.
packages=(build-essential cmake ninja-build pkg-config ccache git make
  clang-format clang-tidy clang-14 libfuzzer-14-dev
  libssl-dev openssl ca-certificates nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libfuse3-dev fuse3 libseccomp-dev libcap-dev
  zlib1g-dev libzstd-dev
  busybox-static runc crun podman containerd umoci iproute2 util-linux bsdutils procps curl tar gzip pigz zstd diffutils
  containernetworking-plugins iptables nftables slirp4netns
  python3 file tinyproxy microsocks stunnel4
  skopeo attr libcap2-bin acl debootstrap)
# Node.js and npm run the interop tests against the JS IPFS implementation. A machine may already
# have a newer Node.js with its own npm (Debian's npm package conflicts with it): install them
# from Debian only when the commands are missing.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # The package starts a system proxy on port 8888 where an init system runs it; the tests run
  # their own, so that one is not wanted.
  if [[ " ${missing[*]} " == *" tinyproxy "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now tinyproxy >/dev/null 2>&1 || true
  fi
  # Likewise containerd: its tests start their own, in a private directory and mount namespace.
  if [[ " ${missing[*]} " == *" containerd "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now containerd >/dev/null 2>&1 || true
  fi
fi

# npm packages for interop tests (lockfile-pinned).
if [ "$target" = test ] && [ -f tests/interop/package.json ]; then
  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
fi

make build
exec make "$target"
