#!/usr/bin/env bash
# Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) from real data: blocks,
# CARs and HTTP exchanges that cidrun and its peers produce (the JS gateway of tests/interop when
# its npm packages are installed, curl, microsocks, tinyproxy), OCI configs from cidrun, runc and
# crun. The corpora are committed: run this again when a format changes, and commit the result.
#   tests/fuzz/make-corpus.sh BUILD_DIR [TARGET...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR [TARGET...]}" && pwd)
shift
cidrun=$build/cidrun
[ -x "$cidrun" ] || { echo "make-corpus.sh: $cidrun missing" >&2; exit 2; }
out=$root/tests/fuzz/corpus
work=$(mktemp -d /tmp/cidrun-corpus-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export CIDRUN_PATH=$work/repo

# A seed file named after its content's hash, so that running this twice changes nothing.
seed() {  # TARGET < bytes
  local tmp=$work/seed.tmp
  cat >"$tmp"
  mkdir -p "$out/$1"
  mv "$tmp" "$out/$1/$(sha1sum "$tmp" | cut -c1-16)"
}

# Content every format below is made from: small files, a multi-chunk file, a symlink, modes
# and mtimes, and a directory big enough to be a HAMT shard (small chunks keep blocks small).
make_tree() {
  local t=$work/tree
  mkdir -p "$t/sub" "$t/big"
  printf 'hello\n' >"$t/hello.txt"
  : >"$t/empty"
  head -c 3000 /dev/urandom >"$t/sub/multi.bin"
  ln -s ../hello.txt "$t/sub/link"
  chmod 4755 "$t/hello.txt"
  for i in $(seq 1 40); do printf 'entry %d\n' "$i" >"$t/big/file-$i"; done
  touch -d '1969-07-20 20:17:40' "$t/sub/multi.bin"
  v0=$("$cidrun" add -r -Q --chunker size-1024 --preserve-mode --preserve-mtime "$t")
  v1=$("$cidrun" add -r -Q --cid-version 1 --chunker size-1024 --hamt-threshold 256 "$t")
  trickle=$("$cidrun" add -Q --trickle --chunker size-256 "$t/sub/multi.bin")
  file=$("$cidrun" add -Q --cid-version 1 "$t/hello.txt")
  hamt=$("$cidrun" add -r -Q --cid-version 1 --hamt-threshold 256 "$t/big")
}

corpus_multiformats() {
  # Every CID kubo printed for the project's vectors, and the same CIDs in other bases and as bytes.
  python3 - "$root/tests/interop/kubo-vectors.json" "$out/multiformats" <<'PY'
import base64, hashlib, json, os, re, sys
text = open(sys.argv[1]).read()
cids = sorted(set(re.findall(r'\b(Qm[1-9A-HJ-NP-Za-km-z]{44}|baf[a-z2-7]{20,})\b', text)))
B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
def b58dec(s):
    n = 0
    for c in s: n = n * 58 + B58.index(c)
    raw = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return b'\0' * (len(s) - len(s.lstrip('1'))) + raw
def b32dec(s):
    s = s.upper(); return base64.b32decode(s + '=' * (-len(s) % 8))
out = sys.argv[2]; os.makedirs(out, exist_ok=True)
def put(data):
    if isinstance(data, str): data = data.encode()
    open(os.path.join(out, hashlib.sha1(data).hexdigest()[:16]), 'wb').write(data)
for c in cids[::3]:
    put(c)
    raw = b58dec(c) if c.startswith('Qm') else b32dec(c[1:])
    put(raw)
    if not c.startswith('Qm'):
        put('B' + c[1:].upper())
        put('f' + raw.hex())
        put('m' + base64.b64encode(raw).decode().rstrip('='))
for v in (0, 1, 127, 128, 300, 2**32, 2**63):
    b = bytearray()
    while True:
        x = v & 0x7f; v >>= 7
        b.append(x | (0x80 if v else 0))
        if not v: break
    put(bytes(b))
put('bafkqaaa')
PY
}

corpus_dagpb() {
  # The store's own block files: dag-pb nodes of every kind above (and raw leaves, which the
  # decoder must refuse or read as something harmless).
  find "$CIDRUN_PATH/blocks" -name '*.data' -size -2k | sort | head -60 | while read -r f; do
    seed dagpb <"$f"
  done
}

corpus_car() {
  for c in "$v0" "$v1" "$trickle" "$file" "$hamt"; do
    "$cidrun" dag export "$c" | seed car
  done
  # A CARv2 around the same payload: the 11-byte pragma, a 40-byte header (characteristics, data
  # offset, data size, no index), then the CARv1.
  "$cidrun" dag export "$file" >"$work/v1.car"
  python3 - "$work/v1.car" <<'PY' | seed car
import struct, sys
payload = open(sys.argv[1], 'rb').read()
pragma = bytes.fromhex('0aa16776657273696f6e02')
header = bytes(16) + struct.pack('<QQQ', 11 + 40, len(payload), 0)
sys.stdout.buffer.write(pragma + header + payload)
PY
}

# Starts `cidrun serve` on the repo; sets gw to its URL.
start_serve() {
  "$cidrun" serve --listen 127.0.0.1:0 -q >"$work/serve.out" 2>"$work/serve.err" &
  pids+=($!)
  for _ in $(seq 100); do
    gw=$(sed -n 's/.*"gateway":"\([^"]*\)".*/\1/p' "$work/serve.out")
    [ -n "$gw" ] && return
    sleep 0.1
  done
  echo "make-corpus.sh: serve did not start" >&2
  exit 1
}

# Sends a raw request to URL's host:port and writes the raw response bytes to stdout.
raw_exchange() {  # URL REQUEST_TEXT
  python3 - "$1" "$2" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
s = socket.create_connection((u.hostname, u.port), timeout=10)
s.sendall(sys.argv[2].encode().decode('unicode_escape').encode('latin-1'))
s.shutdown(socket.SHUT_WR)
data = b''
while True:
    b = s.recv(65536)
    if not b: break
    data += b
sys.stdout.buffer.write(data[:64 * 1024])
PY
}

corpus_http_response() {
  local reqs=(
    "GET /ipfs/$file HTTP/1.1\r\nHost: g\r\nAccept: application/vnd.ipld.raw\r\nConnection: close\r\n\r\n"
    "GET /ipfs/$v1/sub?format=car&dag-scope=entity HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n"
    "GET /ipfs/$hamt?format=car HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n"
    "GET /ipfs/$file?format=raw HTTP/1.0\r\n\r\n"
    "GET /ipfs/$file?format=raw HTTP/1.1\r\nHost: g\r\nRange: bytes=1-3\r\nConnection: close\r\n\r\n"
    "GET /ipfs/$file?format=raw HTTP/1.1\r\nHost: g\r\nIf-None-Match: \"$file.raw\"\r\nConnection: close\r\n\r\n"
    "HEAD /ipfs/$file?format=raw HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n"
    "GET /ipfs/bafkqaaa/nope?format=car HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n"
    "GET /ipfs/$file HTTP/1.1\r\nHost: g\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
  )
  for r in "${reqs[@]}"; do raw_exchange "$gw" "$r" | seed http_response; done
  # The JS gateway peer's answers (tests/interop, when its packages are installed).
  if [ -d "$root/tests/interop/node_modules" ] && command -v node >/dev/null; then
    node "$root/tests/interop/exchange/js-node.mjs" --dir "$work/tree/sub" --profile v1 \
      >"$work/js.out" 2>"$work/js.err" &
    pids+=($!)
    local js="" jsroot=""
    for _ in $(seq 100); do
      js=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$work/js.out")
      jsroot=$(sed -n 's/.*"root":"\([^"]*\)".*/\1/p' "$work/js.out")
      [ -n "$js" ] && break
      sleep 0.2
    done
    if [ -n "$js" ]; then
      raw_exchange "$js" "GET /ipfs/$jsroot?format=car HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n" | seed http_response
      raw_exchange "$js" "GET /ipfs/$jsroot HTTP/1.1\r\nHost: g\r\nAccept: application/vnd.ipld.raw\r\nConnection: close\r\n\r\n" | seed http_response
      raw_exchange "$js" "POST /api/v0/block/get?arg=$jsroot HTTP/1.1\r\nHost: g\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" | seed http_response
    fi
  fi
  printf 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' | seed http_response
}

# A server that records the request heads real clients send, answering each with a 404.
corpus_http_request() {
  python3 - "$work/heads" >"$work/capture.port" <<'PY' &
import os, socket, sys, threading
out = sys.argv[1]; os.makedirs(out, exist_ok=True)
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(16)
print(srv.getsockname()[1], flush=True)
n = 0
while True:
    c, _ = srv.accept()
    c.settimeout(5)
    data = b''
    try:
        while b'\r\n\r\n' not in data:
            b = c.recv(4096)
            if not b: break
            data += b
        head = data[:data.find(b'\r\n\r\n') + 4]
        n += 1
        open(os.path.join(out, str(n)), 'wb').write(head)
        c.sendall(b'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    except OSError:
        pass
    c.close()
PY
  pids+=($!)
  local port=""
  for _ in $(seq 50); do port=$(cat "$work/capture.port" 2>/dev/null || true); [ -n "$port" ] && break; sleep 0.1; done
  local cap=http://127.0.0.1:$port
  CIDRUN_PATH=$work/empty "$cidrun" pull "$file" --from "$cap" >/dev/null 2>&1 || true
  CIDRUN_PATH=$work/empty "$cidrun" pull "$v1" --from "kubo+$cap" >/dev/null 2>&1 || true
  curl -s -o /dev/null -H 'Accept: application/vnd.ipld.car; version=1; order=dfs; dups=y' \
    -r 0-10 "$cap/ipfs/$v1/sub?format=car&dag-scope=entity&entity-bytes=-10:*" || true
  curl -s -o /dev/null -I "$cap/ipfs/$file?format=raw&filename=h%C3%A9llo.txt" || true
  if [ -d "$root/tests/interop/node_modules" ] && command -v node >/dev/null; then
    node "$root/tests/interop/exchange/js-fetch.mjs" "$cap" "$file" "$work/jsout" >/dev/null 2>&1 || true
  fi
  sleep 0.5
  for f in "$work"/heads/*; do [ -s "$f" ] && seed http_request <"$f"; done
}

corpus_proxy_reply() {
  # Real proxies answering a real client (a SOCKS5 greeting and CONNECT to the gateway, a
  # CONNECT to tinyproxy): byte 0 of a seed picks the kind in proxy_reply.cpp (2 = socks5,
  # 4 = http CONNECT), the rest is what the proxy sent, the origin's answer included.
  local gwport=${gw##*:}
  if command -v microsocks >/dev/null; then
    local sp  # microsocks cannot listen on port 0: a free port is picked first
    sp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    microsocks -i 127.0.0.1 -p "$sp" >/dev/null 2>&1 &
    pids+=($!)
    sleep 0.3
    python3 - "$sp" "$gwport" "$file" <<'PY' | seed proxy_reply
import socket, struct, sys
sp, gp, cid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(('127.0.0.1', sp), timeout=10)
s.sendall(b'\x05\x01\x00')
got = s.recv(2)
s.sendall(b'\x05\x01\x00\x01' + socket.inet_aton('127.0.0.1') + struct.pack('>H', gp))
got += s.recv(10)
s.sendall(('GET /ipfs/%s?format=raw HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n' % cid).encode())
while True:
    b = s.recv(65536)
    if not b: break
    got += b
sys.stdout.buffer.write(b'\x02' + got)
PY
  fi
  if command -v tinyproxy >/dev/null; then
    local tp conf=$work/tinyproxy.conf
    tp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf 'Port %s\nListen 127.0.0.1\nTimeout 10\nConnectPort %s\nAllow 127.0.0.1\n' "$tp" "$gwport" >"$conf"
    tinyproxy -d -c "$conf" >/dev/null 2>&1 &
    pids+=($!)
    sleep 0.5
    python3 - "$tp" "$gwport" <<'PY' | seed proxy_reply
import socket, sys
tp, gp = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(('127.0.0.1', tp), timeout=10)
s.sendall(('CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n' % (gp, gp)).encode())
got = b''
while b'\r\n\r\n' not in got:
    b = s.recv(1)
    if not b: break
    got += b
sys.stdout.buffer.write(b'\x04' + got)
PY
  fi
  # SOCKS4 has no real peer here: its 8-byte grant and refusal, per the protocol.
  printf '\x00\x00\x5a\x00\x00\x00\x00\x00HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi' | seed proxy_reply
  printf '\x01\x00\x5b\x00\x00\x00\x00\x00' | seed proxy_reply
}

corpus_oci_spec() {
  "$cidrun" config | seed oci_spec
  "$cidrun" config --rootless | seed oci_spec
  for rt in runc crun; do
    command -v "$rt" >/dev/null || continue
    (cd "$work" && rm -f config.json && "$rt" spec && seed oci_spec <config.json)
    (cd "$work" && rm -f config.json && "$rt" spec --rootless && seed oci_spec <config.json)
  done
  # The default seccomp profile alone (run --seccomp FILE) and a process (exec --process FILE).
  "$cidrun" config | python3 -c 'import json,sys; c=json.load(sys.stdin); print(json.dumps(c["linux"].get("seccomp", {})))' | seed oci_spec
  "$cidrun" config | python3 -c 'import json,sys; c=json.load(sys.stdin); print(json.dumps(c["process"]))' | seed oci_spec
}

corpus_unixfs_dag() {
  # Its input is a description read by FuzzedDataProvider, not a format: fixed pseudo-random
  # seeds give it a start.
  for i in 1 2 3 4 5 6; do
    python3 -c "import random,sys; random.seed($i); sys.stdout.buffer.write(bytes(random.randrange(256) for _ in range(64 * $i)))" | seed unixfs_dag
  done
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(multiformats dagpb car http_response http_request proxy_reply oci_spec unixfs_dag)
make_tree
start_serve
for t in "${targets[@]}"; do
  rm -rf "${out:?}/$t"
  "corpus_$t"
  echo "$t: $(ls "$out/$t" | wc -l) seeds, $(du -sk "$out/$t" | cut -f1) KiB"
done
