#!/usr/bin/env python3
"""Compares two directory trees as an image unpack must reproduce them: the same paths, and for
each the same type, permission bits (setuid/setgid/sticky included), owner, group, nanosecond
mtime, size and SHA-256 of files, symlink target, device numbers, xattrs (every namespace the
caller can read), and the same hard-link groups (which names share an inode).

    compare-trees.py EXPECTED ACTUAL [--ignore-root-mtime] [--ignore PATH]...
                     [--ignore-mtime-since EPOCH]

--ignore-mtime-since: directories whose mtime in EXPECTED is at or after EPOCH (seconds) were
stamped by the unpacker itself (umoci gives a directory no layer names the time of the unpack;
cidrun gives it 0, so that an import is deterministic): their mtimes are not compared.

Prints every difference (at most 50) and exits 1 if there is any, 0 when the trees agree.
"""
import argparse
import hashlib
import os
import stat
import sys


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def describe(root, rel, st):
    path = os.path.join(root, rel) if rel else root
    d = {
        "type": stat.S_IFMT(st.st_mode),
        "mode": oct(stat.S_IMODE(st.st_mode)),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime_ns": st.st_mtime_ns,
    }
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        names = []
    d["xattrs"] = {n: os.getxattr(path, n, follow_symlinks=False).hex() for n in sorted(names)}
    if stat.S_ISREG(st.st_mode):
        d["size"] = st.st_size
        d["sha256"] = file_digest(path)
    elif stat.S_ISLNK(st.st_mode):
        d["target"] = os.readlink(path)
        del d["mode"]  # always 0777 on Linux
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return d


def walk(root, ignore):
    entries = {}
    inodes = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        path = os.path.join(root, rel) if rel else root
        st = os.lstat(path)
        if rel not in ignore:
            entries[rel] = describe(root, rel, st)
            if not stat.S_ISDIR(st.st_mode):
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
        if stat.S_ISDIR(st.st_mode) and rel not in ignore:
            for name in os.listdir(path):
                stack.append(os.path.join(rel, name) if rel else name)
    groups = sorted(sorted(v) for v in inodes.values() if len(v) > 1)
    return entries, groups


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("expected")
    ap.add_argument("actual")
    ap.add_argument("--ignore-root-mtime", action="store_true")
    ap.add_argument("--ignore", action="append", default=[])
    ap.add_argument("--ignore-mtime-since", type=float)
    a = ap.parse_args()
    ignore = set(a.ignore)
    exp, exp_groups = walk(a.expected, ignore)
    act, act_groups = walk(a.actual, ignore)
    if a.ignore_root_mtime:
        exp[""].pop("mtime_ns", None)
        act[""].pop("mtime_ns", None)
    if a.ignore_mtime_since is not None:
        for rel, e in exp.items():
            if (e["type"] == stat.S_IFDIR and rel in act
                    and e.get("mtime_ns", 0) >= a.ignore_mtime_since * 1e9):
                e.pop("mtime_ns")
                act[rel].pop("mtime_ns", None)
    diffs = []
    for rel in sorted(set(exp) | set(act)):
        name = rel or "."
        if rel not in act:
            diffs.append(f"missing: {name}")
        elif rel not in exp:
            diffs.append(f"extra: {name}")
        elif exp[rel] != act[rel]:
            for k in sorted(set(exp[rel]) | set(act[rel])):
                if exp[rel].get(k) != act[rel].get(k):
                    diffs.append(f"{name}: {k} {exp[rel].get(k)!r} != {act[rel].get(k)!r}")
    if exp_groups != act_groups:
        diffs.append(f"hard-link groups differ: {exp_groups} != {act_groups}")
    for d in diffs[:50]:
        print(d)
    if diffs:
        print(f"{len(diffs)} differences between {a.expected} and {a.actual}")
        return 1
    print(f"trees agree: {len(exp)} paths, {len(exp_groups)} hard-link groups")
    return 0


if __name__ == "__main__":
    sys.exit(main())
