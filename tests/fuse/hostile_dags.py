#!/usr/bin/env python3
"""Writes hostile UnixFS DAGs as one CARv1 for tests/fuse/lazy_hostile.test.sh.

    hostile_dags.py OUT.car [NAME=CID ...]

Every block is real dag-pb or raw, addressed by its sha2-256 CIDv1; what is hostile is what the
nodes claim and how they link. Prints "NAME CID" for:
  hostile    a directory holding every case below
  fillable   the same without corrupt.bin (a background fill of it can complete)
  container  fillable's entries plus the NAME=CID links given (a root to run a container in)
  corrupt    the raw block that the test overwrites in the serving repository
  corrupt-key  that block's name in a flatfs store
The cases (entries of hostile):
  good.txt        a plain file, for comparison
  filesize-big    a file node claiming 10 bytes over a 5-byte leaf
  filesize-small  a file node claiming 3 bytes over a 5-byte leaf
  inner-lie       a two-level file whose second child holds 6 bytes where its parent says 4
  size-past-off_t a file node claiming 2^63 bytes (more than off_t holds)
  tsize-big       a raw leaf of 5 bytes whose directory link says 9
  tsize-small     a raw leaf of 5 bytes whose directory link says 2
  deep-file       5000 file nodes, each linking the next, over one 1-byte leaf
  deep-dir        300 directories, each holding the next as "d"
  huge-dir        one directory block (under 1 MiB) of 69,000 empty files
  huge-hamt       a HAMT of 256 shards holding 204,800 empty files
  hamt-bomb       a HAMT whose every slot at every level links the same shard (256^7 paths)
  diamond         50 levels of a node linking the next twice over a 1 KiB leaf: 2^60 bytes
  zero-diamond    "abc", then 64 levels of empty nodes linking the next twice, then "def"
  corrupt.bin     a raw leaf the test corrupts on the gateway
"""
import hashlib
import sys

RAW, DAG_PB = 0x55, 0x70
T_DIR, T_FILE, T_HAMT = 1, 2, 5
MURMUR3 = 0x22


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def cid_bytes(codec, block):
    return b"\x01" + varint(codec) + b"\x12\x20" + hashlib.sha256(block).digest()


IDENTITY_EMPTY = b"\x01" + varint(RAW) + b"\x00\x00"  # an empty raw block inside its CID


def b32(data):
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    bits = int.from_bytes(data, "big")
    n = len(data) * 8
    pad = (5 - n % 5) % 5
    bits <<= pad
    n += pad
    return "".join(alphabet[(bits >> (n - 5 * (i + 1))) & 31] for i in range(n // 5))


def cid_str(cid):
    return "b" + b32(cid)


class Car:
    def __init__(self):
        self.blocks = {}
        self.order = []

    def put(self, codec, block):
        cid = cid_bytes(codec, block)
        if cid not in self.blocks:
            self.blocks[cid] = block
            self.order.append(cid)
        return cid

    def raw(self, data):
        return self.put(RAW, data)

    def node(self, links, unixfs):
        """links: (cid, name or None, tsize or None); unixfs: encoded UnixFS Data."""
        out = bytearray()
        for cid, name, tsize in links:
            link = field_bytes(1, cid)
            if name is not None:
                link += field_bytes(2, name.encode())
            if tsize is not None:
                link += field_varint(3, tsize)
            out += field_bytes(2, link)
        out += field_bytes(1, unixfs)
        return self.put(DAG_PB, bytes(out))

    def write(self, path, roots):
        def cbor_head(major, n):
            if n < 24:
                return bytes([major << 5 | n])
            if n < 256:
                return bytes([major << 5 | 24, n])
            return bytes([major << 5 | 25]) + n.to_bytes(2, "big")

        header = cbor_head(5, 2) + cbor_head(3, 5) + b"roots" + cbor_head(4, len(roots))
        for r in roots:
            header += b"\xd8\x2a" + cbor_head(2, len(r) + 1) + b"\x00" + r
        header += cbor_head(3, 7) + b"version" + cbor_head(0, 1)
        with open(path, "wb") as f:
            f.write(varint(len(header)) + header)
            for cid in self.order:
                block = self.blocks[cid]
                f.write(varint(len(cid) + len(block)) + cid + block)


def unixfs(kind, filesize=None, blocksizes=(), data=None, fanout=None):
    out = field_varint(1, kind)
    if data is not None:
        out += field_bytes(2, data)
    if filesize is not None:
        out += field_varint(3, filesize)
    for b in blocksizes:
        out += field_varint(4, b)
    if fanout is not None:
        out += field_varint(5, MURMUR3) + field_varint(6, fanout)
    return out


def file_node(car, children):
    """children: (cid, claimed size)."""
    sizes = [s for _, s in children]
    return car.node([(c, None, s) for c, s in children], unixfs(T_FILE, sum(sizes), sizes))


def directory(car, entries):
    """entries: (name, cid, tsize or None), written in name order."""
    links = sorted((name, cid, tsize) for name, cid, tsize in entries)
    return car.node([(cid, name, tsize) for name, cid, tsize in links], unixfs(T_DIR))


def hamt_shard(car, links):
    links = sorted(links, key=lambda l: l[1].encode())
    return car.node(links, unixfs(T_HAMT, fanout=256))


def main():
    out = sys.argv[1]
    extra = [arg.split("=", 1) for arg in sys.argv[2:]]
    car = Car()
    cases = []

    five = car.raw(b"alpha")
    cases.append(("good.txt", five, 5))
    cases.append(("filesize-big", car.node([(five, None, 5)], unixfs(T_FILE, 10, [10])), None))
    cases.append(("filesize-small", car.node([(five, None, 5)], unixfs(T_FILE, 3, [3])), None))
    four = file_node(car, [(car.raw(b"abcd"), 4)])
    six = file_node(car, [(car.raw(b"efghij"), 6)])
    cases.append(("inner-lie", file_node(car, [(four, 4), (six, 4)]), None))
    cases.append(("size-past-off_t", file_node(car, [(five, 1 << 62), (five, 1 << 62)]), None))
    cases.append(("tsize-big", five, 9))
    cases.append(("tsize-small", five, 2))

    deep = car.raw(b"y")
    for _ in range(5000):
        deep = file_node(car, [(deep, 1)])
    cases.append(("deep-file", deep, None))

    d = directory(car, [])
    for _ in range(300):
        d = directory(car, [("d", d, None)])
    cases.append(("deep-dir", d, None))

    cases.append(("huge-dir", directory(car, [("%05d" % i, IDENTITY_EMPTY, None)
                                              for i in range(69000)]), None))

    shards = []
    for slot in range(256):
        shards.append((hamt_shard(car, [(IDENTITY_EMPTY, "%02X" % slot + "e%03d-%06d" % (slot, i),
                                         None) for i in range(800)]), "%02X" % slot, None))
    cases.append(("huge-hamt", hamt_shard(car, shards), None))

    bomb = hamt_shard(car, [(five, "00name", 5)])
    for _ in range(7):
        bomb = hamt_shard(car, [(bomb, "%02X" % slot, None) for slot in range(256)])
    cases.append(("hamt-bomb", bomb, None))

    top = car.raw(b"x" * 1024)
    for level in range(50):
        top = file_node(car, [(top, 1024 << level), (top, 1024 << level)])
    cases.append(("diamond", top, None))

    empty = car.raw(b"")
    for _ in range(64):
        empty = file_node(car, [(empty, 0), (empty, 0)])
    cases.append(("zero-diamond", file_node(car, [(car.raw(b"abc"), 3), (empty, 0),
                                                  (car.raw(b"def"), 3)]), None))

    corrupt = car.raw(bytes(range(256)) * 4)
    fillable = directory(car, cases)
    hostile = directory(car, cases + [("corrupt.bin", corrupt, 1024)])
    container = directory(car, cases + [(name, parse_cid(cid), None) for name, cid in extra])
    car.write(out, [hostile, fillable, container])
    for name, cid in (("hostile", hostile), ("fillable", fillable), ("container", container),
                      ("corrupt", corrupt)):
        print(name, cid_str(cid))
    print("corrupt-key", b32(corrupt[2:]).upper())  # its flatfs file name: the multihash


def parse_cid(text):
    """A CIDv1 in base32 ("b...") or a CIDv0 ("Qm..."), as bytes."""
    if text.startswith("Qm"):
        alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
        n = 0
        for ch in text:
            n = n * 58 + alphabet.index(ch)
        return n.to_bytes(34, "big")
    if not text.startswith("b"):
        raise SystemExit("hostile_dags.py: CIDs must be CIDv0 or base32 CIDv1: " + text)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    bits = 0
    for ch in text[1:]:
        bits = bits << 5 | alphabet.index(ch)
    nbits = 5 * (len(text) - 1)
    return (bits >> (nbits % 8)).to_bytes(nbits // 8, "big")


if __name__ == "__main__":
    main()
