#!/usr/bin/env python3
"""Writes an OCI image layout whose layers exercise what applying layers must get right, or one
hostile layer that a careful importer must refuse.

    make-oci.py DIR KIND [--gzip-only]

KIND "layers": three layers (gzip, zstd when the zstd tool is present, uncompressed):
  1. a base: directories, files with owners and modes (setuid, sticky), xattrs (user.* and
     security.capability as PAX SCHILY.xattr records), hard links, a symlink, a fifo, a char
     device, deep paths, an empty file, names with spaces and UTF-8;
  2. changes: a whiteout of a file and of a directory, an opaque directory with a new file, a hard
     link to a file of layer 1, a chown-only and a chmod-only change (metadata-only entries), a
     file replaced by a directory and a directory replaced by a symlink;
  3. a file re-added under a name whited out before, and a whiteout of a name that never existed.
KIND is one of the hostile cases listed in HOSTILE below: one layer (gzip unless the case is
about compression) that must be refused.
--gzip-only: every layer gzip (umoci, the reference unpacker, reads no zstd).
The image config names the layers' diff_ids; a DIGEST_MISMATCH case lies in the manifest.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

MTIME = 1700000000


def info(name, kind=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, size=0, link="", xattrs=None,
         dev=(0, 0)):
    t = tarfile.TarInfo(name)
    t.type = kind
    t.mode = mode
    t.uid, t.gid = uid, gid
    t.uname = t.gname = ""
    t.mtime = MTIME
    t.size = size
    t.linkname = link
    t.devmajor, t.devminor = dev
    if xattrs:
        t.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
    return t


class Layer:
    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def dir(self, name, mode=0o755, uid=0, gid=0, **kw):
        self.tar.addfile(info(name, tarfile.DIRTYPE, mode, uid, gid, **kw))

    def file(self, name, data=b"", mode=0o644, uid=0, gid=0, **kw):
        if isinstance(data, str):
            data = data.encode()
        self.tar.addfile(info(name, tarfile.REGTYPE, mode, uid, gid, size=len(data), **kw),
                         io.BytesIO(data))

    def raw(self, tinfo, data=None):
        self.tar.addfile(tinfo, io.BytesIO(data) if data is not None else None)

    def symlink(self, name, target):
        self.tar.addfile(info(name, tarfile.SYMTYPE, 0o777, link=target))

    def hardlink(self, name, target):
        self.tar.addfile(info(name, tarfile.LNKTYPE, 0o644, link=target))

    def bytes(self):
        self.tar.close()
        return self.buf.getvalue()


def layers_case():
    a = Layer()
    a.dir("etc/")
    a.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    a.file("etc/shadow", "root:*:19000:0:99999:7:::\n", mode=0o640, gid=42)
    a.dir("var/mail", mode=0o2775, gid=8)
    a.dir("tmp", mode=0o1777)
    a.dir("usr/bin")
    a.file("usr/bin/su", b"\x7fELF not really\n", mode=0o4755)
    # security.capability v2: cap_net_raw (bit 13) permitted + effective.
    cap = b"\x01\x00\x00\x02" + bytes([0, 0x20, 0, 0]) + bytes(4) + bytes(8)
    a.file("usr/bin/ping", b"ping\n", mode=0o755,
           xattrs={"security.capability": cap.decode("latin-1"), "user.note": "pinger"})
    a.file("usr/lib/data/one", "one\n" * 1000, uid=1000, gid=1000)
    a.hardlink("usr/lib/data/one-again", "usr/lib/data/one")
    a.file("usr/lib/data/empty")
    a.file("usr/lib/data/with space é", "utf-8 name\n")
    a.symlink("usr/lib/data/link", "../data/one")
    a.raw(info("dev/ttyS0", tarfile.CHRTYPE, 0o620, 0, 5, dev=(4, 64)))
    a.raw(info("run/fifo", tarfile.FIFOTYPE, 0o600))
    a.file("a/b/c/d/e/f/deep", "deep\n")
    a.file("gone/file", "whited out later\n")
    a.dir("gone/dir")
    a.file("gone/dir/inner", "x\n")
    a.dir("opaque")
    a.file("opaque/old", "hidden by the opaque marker\n")
    a.file("becomes-dir", "a file first\n")
    a.dir("becomes-link")
    a.file("becomes-link/x", "x\n")
    a.file("meta/chown-only", "owner changes\n")
    a.file("meta/chmod-only", "mode changes\n")
    a.file("reborn", "first life\n")

    b = Layer()
    b.file("gone/.wh.file")
    b.file("gone/.wh.dir")
    b.dir("opaque")
    b.file("opaque/.wh..wh..opq")
    b.file("opaque/new", "only this survives\n")
    b.hardlink("usr/lib/linked-from-lower", "usr/lib/data/one")
    b.file("meta/chown-only", "owner changes\n", uid=33, gid=33)
    b.file("meta/chmod-only", "mode changes\n", mode=0o600)
    b.file(".wh.becomes-dir")
    b.dir("becomes-dir")
    b.file("becomes-dir/inside", "now a directory\n")
    b.file(".wh.becomes-link")
    b.symlink("becomes-link", "usr/lib")
    b.file(".wh.reborn")

    c = Layer()
    c.file("reborn", "second life\n", mode=0o600)
    c.file("etc/.wh.never-was")
    return [(a.bytes(), "gzip"), (b.bytes(), "zstd"), (c.bytes(), "none")]


def one(layer_fn, compression="gzip"):
    l = Layer()
    layer_fn(l)
    return [(l.bytes(), compression)]


def hostile_huge():
    # A header claiming 1 TiB with 4 KiB of content behind it (the archive ends early).
    l = Layer()
    l.file("small", "ok\n")
    t = info("big", size=1 << 40)
    l.buf.write(t.tobuf(tarfile.PAX_FORMAT))
    l.buf.write(b"x" * 4096)
    return [(l.buf.getvalue(), "gzip")]


def hostile_truncated(compression):
    l = Layer()
    l.file("f", os.urandom(64 * 1024))
    data = l.bytes()
    return [(data, compression + "-truncated")]


HOSTILE = {
    "dotdot": lambda: one(lambda l: l.file("../escape", "x\n")),
    "dotdot-inner": lambda: one(lambda l: l.file("a/../../escape", "x\n")),
    "absolute": lambda: one(lambda l: l.file("/etc/escape", "x\n")),
    "symlink-write-through": lambda: one(lambda l: (l.symlink("out", "/tmp"),
                                                    l.file("out/escape", "x\n"))),
    "symlink-dotdot-through": lambda: one(lambda l: (l.symlink("up", "../../../.."),
                                                     l.file("up/escape", "x\n"))),
    "hardlink-outside": lambda: one(lambda l: l.hardlink("h", "../../etc/passwd")),
    "hardlink-later": lambda: one(lambda l: (l.hardlink("h", "later"), l.file("later", "x\n"))),
    "whiteout-dotdot": lambda: one(lambda l: l.file(".wh...")),
    "nul-in-name": lambda: one(lambda l: l.raw(info("a\0b", size=0))),
    "huge-size": hostile_huge,
    "truncated-gzip": lambda: hostile_truncated("gzip"),
    "truncated-zstd": lambda: hostile_truncated("zstd"),
    "digest-mismatch": lambda: one(lambda l: l.file("f", "x\n")),
    # Not refused: dropped with a warning (an overlay must never see an image's trusted.overlay.*).
    "trusted-xattr": lambda: one(lambda l: l.dir("d", xattrs={"trusted.overlay.opaque": "y",
                                                             "user.kept": "yes"})),
}


def compress(data, how):
    if how == "none":
        return data, "application/vnd.oci.image.layer.v1.tar"
    if how.startswith("gzip"):
        out = gzip.compress(data, mtime=0)
        if how.endswith("truncated"):
            out = out[: len(out) // 2]
        return out, "application/vnd.oci.image.layer.v1.tar+gzip"
    if how.startswith("zstd"):
        if not shutil.which("zstd"):
            return compress(data, "gzip" + how[4:])
        out = subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE,
                             check=True).stdout
        if how.endswith("truncated"):
            out = out[: len(out) // 2]
        return out, "application/vnd.oci.image.layer.v1.tar+zstd"
    raise ValueError(how)


def blob(dirname, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(dirname, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d


def main():
    out, kind = sys.argv[1], sys.argv[2]
    layers = layers_case() if kind == "layers" else HOSTILE[kind]()
    if "--gzip-only" in sys.argv[3:]:
        layers = [(data, "gzip") for data, _ in layers]
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    descs, diff_ids = [], []
    for data, how in layers:
        diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
        packed, media = compress(data, how)
        digest = blob(out, packed)
        if kind == "digest-mismatch":
            os.rename(os.path.join(out, "blobs", "sha256", digest.split(":")[1]),
                      os.path.join(out, "blobs", "sha256", "0" * 64))
            digest = "sha256:" + "0" * 64
        descs.append({"mediaType": media, "digest": digest, "size": len(packed)})
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin", "GREETING=hello"], "Cmd": ["/bin/sh"],
                   "WorkingDir": "/etc", "Labels": {"test": "make-oci"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "make-oci.py layer %d" % i} for i in range(len(layers))],
    }
    cdata = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": blob(out, cdata), "size": len(cdata)},
        "layers": descs,
    }
    mdata = json.dumps(manifest, sort_keys=True).encode()
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(out, mdata),
         "size": len(mdata), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


if __name__ == "__main__":
    main()
