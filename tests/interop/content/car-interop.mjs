// JS side of the CAR interop test (car-interop.test.sh): reads cidrun's CARs with @ipld/car +
// ipfs-unixfs-exporter, makes CARs with ipfs-unixfs-importer + @ipld/car, and describes trees as
// comparable manifests (path -> type, bytes hash, symlink target, mode, mtime to the ns).
//   node car-interop.mjs manifest-car FILE.car   > m.json   (also checks hashes, roots, no dups)
//   node car-interop.mjs manifest-dir DIR        > m.json
//   node car-interop.mjs make-car DIR OUT.car               (prints the root CID)
//   node car-interop.mjs compare A.json B.json             (exit 1 and the differences if unequal)
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { CarBlockIterator, CarWriter } from '@ipld/car'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { exporter, recursive } from 'ipfs-unixfs-exporter'
import { importer } from 'ipfs-unixfs-importer'
import { sha256 } from 'multiformats/hashes/sha2'

const [, , cmd, ...args] = process.argv

function fail (msg) {
  console.error(`FAIL: ${msg}`)
  process.exit(1)
}

async function manifestCar (file) {
  const iter = await CarBlockIterator.fromIterable(fs.createReadStream(file))
  const roots = await iter.getRoots()
  if (roots.length !== 1) fail(`expected one root, got ${roots.length}`)
  const store = new MemoryBlockstore()
  const seen = new Set()
  for await (const { cid, bytes } of iter) {
    const key = cid.toString()
    if (seen.has(key)) fail(`duplicate block ${key} in CAR`)
    seen.add(key)
    const digest = await sha256.digest(bytes)
    if (Buffer.compare(Buffer.from(digest.digest), Buffer.from(cid.multihash.digest)) !== 0) {
      fail(`block ${key} does not match its hash`)
    }
    await store.put(cid, bytes)
  }
  const out = {}
  for await (const item of recursive(roots[0], store)) {
    const rel = item.path.split('/').slice(1).join('/')
    const entry = await exporter(item.cid, store)
    const u = entry.unixfs
    const rec = {}
    if (u?.type === 'symlink') {
      rec.type = 'symlink'
      rec.target = new TextDecoder().decode(u.data)
    } else if (entry.type === 'directory') {
      rec.type = 'directory'
    } else {
      rec.type = 'file'
      const h = crypto.createHash('sha256')
      for await (const chunk of entry.content()) h.update(chunk)
      rec.sha256 = h.digest('hex')
    }
    // ipfs-unixfs reports a default mode when none is stored; cidrun adds with --preserve-mode.
    if (u && rec.type !== 'symlink' && u.mode !== undefined) rec.mode = (u.mode & 0o7777).toString(8)
    if (u?.mtime) rec.mtime = `${BigInt(u.mtime.secs)}.${String(u.mtime.nsecs ?? 0).padStart(9, '0')}`
    out[rel] = rec
  }
  return out
}

function mtimeOf (st) {
  // BigInt stats: mtimeNs is exact; split it into seconds (floor) and a non-negative fraction.
  const ns = st.mtimeNs
  let secs = ns / 1000000000n
  let frac = ns % 1000000000n
  if (frac < 0n) { frac += 1000000000n; secs -= 1n }
  return `${secs}.${String(frac).padStart(9, '0')}`
}

function manifestDir (root) {
  const out = {}
  const walk = (rel) => {
    const p = path.join(root, rel)
    const st = fs.lstatSync(p, { bigint: true })
    const rec = {}
    if (st.isSymbolicLink()) {
      rec.type = 'symlink'
      rec.target = fs.readlinkSync(p)
    } else if (st.isDirectory()) {
      rec.type = 'directory'
    } else {
      rec.type = 'file'
      rec.sha256 = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')
    }
    if (rec.type !== 'symlink') rec.mode = (Number(st.mode) & 0o7777).toString(8)
    rec.mtime = mtimeOf(st)
    out[rel] = rec
    if (rec.type === 'directory') for (const n of fs.readdirSync(p).sort()) walk(rel === '' ? n : `${rel}/${n}`)
  }
  walk('')
  return out
}

async function makeCar (dir, outFile) {
  const entries = []
  const mtime = (st) => {
    const ns = st.mtimeNs
    let secs = ns / 1000000000n
    let frac = ns % 1000000000n
    if (frac < 0n) { frac += 1000000000n; secs -= 1n }
    return { secs, nsecs: Number(frac) }
  }
  const walk = (rel) => {
    const p = path.join(dir, rel)
    const st = fs.lstatSync(p, { bigint: true })
    const meta = { path: path.join('root', rel), mtime: mtime(st) }
    if (st.isSymbolicLink()) {
      entries.push({ ...meta, link: fs.readlinkSync(p) })
    } else if (st.isDirectory()) {
      entries.push({ ...meta, mode: Number(st.mode) & 0o7777 })
      for (const n of fs.readdirSync(p).sort()) walk(rel === '' ? n : `${rel}/${n}`)
    } else {
      entries.push({ ...meta, mode: Number(st.mode) & 0o7777, content: fs.readFileSync(p) })
    }
  }
  walk('')
  // A store that remembers each block under its full CID (MemoryBlockstore keys by multihash).
  const blocks = new Map()
  const store = {
    async put (cid, bytes) { blocks.set(cid.toString(), { cid, bytes }); return cid },
    async get (cid) { return blocks.get(cid.toString()).bytes },
    async has (cid) { return blocks.has(cid.toString()) }
  }
  let root
  // rawLeaves: with dag-pb leaves, ipfs-unixfs-importer 17.1.1 reduces a one-chunk file that
  // carries mode/mtime into a node whose Data holds the *encoded leaf block* instead of the bytes
  // (readers, its own exporter included, then return those 9+ bytes). Raw leaves avoid that.
  for await (const e of importer(entries, store, { cidVersion: 1, rawLeaves: true })) {
    if (e.path === 'root') root = e.cid
  }
  const { writer, out } = CarWriter.create([root])
  const sink = fs.createWriteStream(outFile)
  const piped = (async () => { for await (const chunk of out) sink.write(chunk) })()
  for (const { cid, bytes } of blocks.values()) await writer.put({ cid, bytes })
  await writer.close()
  await piped
  await new Promise((resolve) => sink.end(resolve))
  console.log(root.toString())
}

function compare (a, b) {
  const x = JSON.parse(fs.readFileSync(a, 'utf8'))
  const y = JSON.parse(fs.readFileSync(b, 'utf8'))
  const diffs = []
  for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
    if (JSON.stringify(x[k]) !== JSON.stringify(y[k])) {
      diffs.push(`${k || '(root)'}: ${JSON.stringify(x[k])} vs ${JSON.stringify(y[k])}`)
    }
  }
  if (diffs.length) fail(`${diffs.length} differences:\n${diffs.slice(0, 20).join('\n')}`)
}

if (cmd === 'manifest-car') console.log(JSON.stringify(await manifestCar(args[0]), null, 1))
else if (cmd === 'manifest-dir') console.log(JSON.stringify(manifestDir(args[0]), null, 1))
else if (cmd === 'make-car') await makeCar(args[0], args[1])
else if (cmd === 'compare') compare(args[0], args[1])
else fail(`unknown command ${cmd}`)
