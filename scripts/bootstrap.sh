#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for cidrun, then runs `make run`, `make test` or `make build`
# (each builds what it needs). As root (`sudo bash ...` where sudo is installed):
#   bash scripts/bootstrap.sh run    # the demo: a busybox root added and run from its CID
#   bash scripts/bootstrap.sh test   # every test (unit, integration, interop, fuzz, style)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-run}
case "$target" in run|test|build) ;; *) echo "usage: $0 run|test|build" >&2; exit 2 ;; esac

if [ "$(id -u)" -ne 0 ]; then echo "bootstrap: run as root (it installs packages)" >&2; exit 1; fi

# Each package with who uses it (nothing is installed that nothing uses).
packages=(
  # The build: compilers, CMake + Ninja (Makefile), pkg-config (CMakeLists.txt finds libraries
  # with it), ccache (CMakeLists.txt uses it when present), make (Makefile), git (the clone; the
  # style tests list files with git ls-files).
  build-essential cmake ninja-build pkg-config ccache git make
  # Libraries cidrun links (CMakeLists.txt, each required there): OpenSSL (hashes, TLS, libp2p
  # crypto), nlohmann-json and CLI11 (headers), libfuse3 (src/fuse), libseccomp, libcap
  # (src/runtime), zlib and zstd (util/stream_compression.h).
  libssl-dev nlohmann-json3-dev libcli11-dev libfuse3-dev libseccomp-dev libcap-dev
  zlib1g-dev libzstd-dev
  # The system certificates that https sources are checked against (net/tls.h).
  ca-certificates
  # The lazy mount (`run --lazy`, `mount`; tests/fuse) opens /dev/fuse and mounts by itself
  # (no fusermount3), but on a host without systemd nothing loads the fuse module or makes
  # /dev/fuse until something does: fuse3's installation runs `modprobe fuse`.
  fuse3
  # The demo: scripts/make-busybox-root.sh builds its root from Debian's static busybox (file
  # checks that it is static); `run`'s default network as root is a bridge through the CNI
  # plugins, whose rules go through iptables.
  busybox-static file containernetworking-plugins iptables
  # Tests: GoogleTest (tests/CMakeLists.txt); clang-format and clang-tidy (tests/style); clang 14
  # and libFuzzer, which build the fuzz targets (tests/fuzz) that the fuzz.* tests run.
  libgtest-dev clang-format clang-tidy clang-14 libfuzzer-14-dev
  # The runtime's peers the tests compare with and run cidrun under (tests/integration,
  # tests/runtime; bench/start.sh too): runc, crun, podman; containerd, whose runc shim the
  # containerd tests run cidrun under; umoci, which packs the OCI archives those tests import
  # and is the reference unpacker the image tests compare with, beside skopeo, the converter
  # (tests/image, bench/image.sh).
  runc crun podman containerd umoci skopeo
  # Tools the tests drive: ip and ss (iproute2), unshare/nsenter/mount (util-linux), script
  # (bsdutils), pgrep (procps), diff, tar; gzip, pigz and zstd, whose output the stream tests
  # decode and the tar tests cross-read; curl (proxy and net CLI tests); openssl, which makes the
  # TLS tests' certificates; python3 (tests/image, tests/fuse scripts); setfattr (attr), setcap
  # (libcap2-bin) and setfacl (acl), which give test roots xattrs, file capabilities and ACLs; nft, which shows the rules
  # the network tests check; slirp4netns, rootless `run`'s network (tests/integration).
  iproute2 util-linux bsdutils procps diffutils tar gzip pigz zstd curl openssl python3 attr
  libcap2-bin acl nftables slirp4netns
  # Real proxies the proxy tests pull through, each started by the tests on a loopback port:
  # tinyproxy (HTTP), microsocks (SOCKS5), stunnel4 (TLS in front of tinyproxy: an HTTPS proxy).
  tinyproxy microsocks stunnel4
  # debootstrap makes the Debian root the image tests pack into layers (tests/image), and the
  # one of bench/image.sh and the scripts that reuse it (bench/README.md).
  debootstrap
)
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

# Each target builds what it needs: `run` the binary alone, `test` and `build` everything.
exec make "$target"
