// The JS peer for bench/get.sh: ipfs-unixfs-exporter reading cidrun's flatfs block store
// directly (kubo layout: blocks/<next-to-last 2>/<BASE32 multihash>.data) and writing the tree
// to disk like `get` does (contents, symlinks, modes, mtimes).
//   node js-get.mjs REPO CID OUT
import fs from 'node:fs'
import path from 'node:path'
import { base32 } from 'multiformats/bases/base32'
import { exporter, recursive } from 'ipfs-unixfs-exporter'

const [, , repo, root, out] = process.argv

const store = {
  get (cid) {
    const key = base32.baseEncode(cid.multihash.bytes).toUpperCase()
    // This blockstore interface returns (not a promise) an iterable of chunks: one, the file.
    return [fs.readFileSync(path.join(repo, 'blocks', key.slice(-3, -1), `${key}.data`))]
  }
}

const dirs = []
for await (const item of recursive(root, store)) {
  const rel = item.path.split('/').slice(1).join('/')
  const target = rel === '' ? out : path.join(out, rel)
  const entry = await exporter(item.cid, store)
  const u = entry.unixfs
  if (u?.type === 'symlink') {
    fs.symlinkSync(new TextDecoder().decode(u.data), target)
    continue
  }
  if (entry.type === 'directory') {
    fs.mkdirSync(target)
    dirs.push([target, u])
    continue
  }
  const fd = fs.openSync(target, 'wx')
  for await (const chunk of entry.content()) fs.writeSync(fd, chunk)
  if (u?.mode !== undefined) fs.fchmodSync(fd, u.mode & 0o7777)
  if (u?.mtime) {
    const t = Number(u.mtime.secs) + (u.mtime.nsecs ?? 0) / 1e9
    fs.futimesSync(fd, t, t)
  }
  fs.closeSync(fd)
}
// Directories last, deepest first, so their own mtimes stick.
for (const [d, u] of dirs.reverse()) {
  if (u?.mode !== undefined) fs.chmodSync(d, u.mode & 0o7777)
  if (u?.mtime) {
    const t = Number(u.mtime.secs) + (u.mtime.nsecs ?? 0) / 1e9
    fs.utimesSync(d, t, t)
  }
}
