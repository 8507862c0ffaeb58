#!/usr/bin/env python3
"""Prints what Python's tarfile reads from a tar archive, as JSON, for tests/image/tar_interop_test.cpp.

One object per entry, in archive order; names and byte strings as hex (they need not be UTF-8):
name, type (the typeflag character), mode, uid, gid, uname, gname, mtime_sec and mtime_nsec (from
the PAX mtime record when there is one: tarfile's float would lose nanoseconds), size, linkname,
devmajor, devminor, xattrs (name -> hex value, from SCHILY.xattr.* records) and sha256 (of the
content of regular files).
"""
import decimal
import hashlib
import json
import sys
import tarfile


def raw(text):
    return text.encode("utf-8", "surrogateescape")


def pax_time(text):
    value = decimal.Decimal(text)
    sec = int(value.to_integral_value(rounding=decimal.ROUND_FLOOR))
    nsec = int(((value - sec) * 1000000000).to_integral_value(rounding=decimal.ROUND_DOWN))
    return sec, nsec


def main():
    out = []
    with tarfile.open(sys.argv[1], "r:", encoding="utf-8", errors="surrogateescape") as tf:
        for m in tf:
            if "mtime" in m.pax_headers:
                sec, nsec = pax_time(m.pax_headers["mtime"])
            else:
                sec, nsec = int(m.mtime), 0
            xattrs = {}
            for key, value in m.pax_headers.items():
                if key.startswith("SCHILY.xattr."):
                    xattrs[raw(key[len("SCHILY.xattr."):]).hex()] = raw(value).hex()
            digest = ""
            if m.isreg():
                digest = hashlib.sha256(tf.extractfile(m).read()).hexdigest()
            out.append({
                "name": raw(m.name).hex(),
                "type": m.type.decode("latin-1"),
                "mode": m.mode,
                "uid": m.uid,
                "gid": m.gid,
                "uname": raw(m.uname).hex(),
                "gname": raw(m.gname).hex(),
                "mtime_sec": sec,
                "mtime_nsec": nsec,
                "size": m.size,
                "linkname": raw(m.linkname).hex(),
                "devmajor": m.devmajor,
                "devminor": m.devminor,
                "xattrs": xattrs,
                "sha256": digest,
            })
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
