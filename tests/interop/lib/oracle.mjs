// The JS reference: `ipfs add` computed with ipfs-unixfs-importer, configured as kubo would be
// for the given flags (see lib/kubo-flags.mjs and the UnixFS spec).
//
// Walk (kubo's rules): lstat, never follow symlinks; directory entries in bytewise name order;
// names starting with "." skipped unless --hidden; empty directories kept; symlinks become UnixFS
// symlinks holding the target; anything else (fifo, socket, device) is an error, like kubo's
// "unrecognized file type".
//
// Two ways to build directories:
//   dirSizing 'js'       : the importer's own tree builder over the whole tree. This is plain JS
//                          behaviour: it decides HAMT sharding while adding, and a subdirectory
//                          that is not flushed yet counts 0 bytes (dir-flat.ts), so a
//                          directory with many non-empty subdirectories can stay flat where kubo
//                          shards it.
//   dirSizing 'complete' : bottom-up, one importer run per directory whose subdirectories are
//                          already built (handed in through the importer's `dirBuilder` option),
//                          so the importer's own size estimate sees every child with its CID and
//                          size: kubo's rule (estimate of the final entry set > threshold), with
//                          the importer's own encoders. Also reports every directory where plain
//                          JS ('js') would decide differently.
import fs from 'node:fs'
import path from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize, rabin } from 'ipfs-unixfs-importer/chunker'
import { balanced, trickle } from 'ipfs-unixfs-importer/layout'
import { linkSerializedSize, dataFieldSerializedSize, utf8ByteLength } from 'ipfs-unixfs-importer/utils'

export class OracleError extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function decodeName (buf, where) {
  try { return utf8.decode(buf) } catch {
    throw new OracleError(`${where}: name is not valid UTF-8 (dag-pb names are UTF-8; JS cannot represent it)`)
  }
}

/** Walk `top` with kubo's rules; returns a node tree {name, rel, abs, kind, target?, children?}. */
export function walk (top, settings) {
  const abs = path.resolve(top)
  const base = path.basename(abs)
  const st = fs.lstatSync(abs)
  if (st.isDirectory() && !settings.recursive) throw new OracleError(`${top} is a directory, use the '-r' flag`)
  return walkNode(abs, base, base, st, settings)
}

function walkNode (abs, name, rel, st, settings) {
  if (st.isSymbolicLink()) {
    return { name, rel, abs, kind: 'symlink', target: decodeName(fs.readlinkSync(abs, { encoding: 'buffer' }), abs) }
  }
  if (st.isFile()) return { name, rel, abs, kind: 'file', size: st.size }
  if (st.isDirectory()) {
    const names = fs.readdirSync(abs, { encoding: 'buffer' })
      .sort(Buffer.compare) // os.ReadDir order: bytewise
      .map(b => decodeName(b, path.join(abs, b.toString())))
      .filter(n => settings.hidden || !n.startsWith('.'))
    const children = names.map(n => {
      const p = path.join(abs, n)
      return walkNode(p, n, `${rel}/${n}`, fs.lstatSync(p), settings)
    })
    return { name, rel, abs, kind: 'dir', children }
  }
  throw new OracleError(`unrecognized file type: ${abs}`)
}

// Small files are read at once (cheap for trees of many files); big ones are streamed.
function content (n) {
  return n.size < (4 << 20) ? fs.readFileSync(n.abs) : readFile(n.abs)
}

async function * readFile (abs) {
  const fh = await fs.promises.open(abs, 'r')
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(1 << 20)
      const { bytesRead } = await fh.read(buf, 0, buf.length, null)
      if (bytesRead === 0) break
      yield buf.subarray(0, bytesRead)
    }
  } finally { await fh.close() }
}

/** ipfs-unixfs-importer options equivalent to kubo's parameters */
export function importerOptions (s) {
  if (s.metadata) {
    throw new OracleError('mode/mtime flags are not modelled: ipfs-unixfs differs from kubo there (default modes omitted, one-chunk leaves wrapped)')
  }
  if (s.chunker.kind === 'buzhash') throw new OracleError('buzhash: ipfs-unixfs-importer has no buzhash chunker (fixedSize and rabin only)')
  const chunker = s.chunker.kind === 'size'
    ? fixedSize({ chunkSize: s.chunker.size })
    : rabin({ minChunkSize: s.chunker.min, avgChunkSize: s.chunker.avg, maxChunkSize: s.chunker.max })
  const noSharding = s.hamtEstimation === 'disabled' || s.hamtThreshold === 0
  return {
    cidVersion: s.cidVersion,
    rawLeaves: s.rawLeaves,
    // kubo's trickle DAG: dag-pb leaves are UnixFS Type=Raw and the root is never collapsed
    leafType: s.trickle ? 'raw' : 'file',
    reduceSingleLeafToSelf: !s.trickle,
    chunker,
    layout: s.trickle ? trickle({ maxChildrenPerNode: s.maxLinks }) : balanced({ maxChildrenPerNode: s.maxLinks }),
    shardSplitThresholdBytes: noSharding ? Number.MAX_SAFE_INTEGER : s.hamtThreshold,
    shardSplitStrategy: s.hamtEstimation === 'block' ? 'block-bytes' : 'links-bytes',
    shardFanoutBits: 8,
    wrapWithDirectory: false,
    fileImportConcurrency: 16,
    blockWriteConcurrency: 16
  }
}

// -n: hash only, keep nothing
const nullStore = { async put (cid) { return cid } }

/**
 * Keeps only directory and HAMT shard blocks (UnixFS Type 1 or 5), to resolve paths afterwards:
 * ipfs-unixfs-importer 17.1.1 reports a directory that sits inside a HAMT-sharded directory under
 * the sharded parent's path (DirSharded.flush overwrites `path` of everything it yields), so such
 * CIDs are looked up through the DAG instead.
 */
function dirStore () {
  const blocks = new Map()
  return {
    async put (cid, bytes) {
      if (cid.code === dagPb.code) {
        const data = dagPb.decode(bytes).Data
        // Data starts with field 1 (Type): 0x08, type
        if (data && data[0] === 0x08 && (data[1] === 1 || data[1] === 5)) blocks.set(cid.toString(), bytes)
      }
      return cid
    },
    async * get (cid) {
      const b = blocks.get(cid.toString())
      if (!b) throw new Error(`block ${cid} was not kept`)
      yield b
    }
  }
}

/** post-order list of directories, files/symlinks in walk (pre-)order: kubo's output order */
function kuboOrder (root) {
  const files = []; const dirs = []
  const visit = n => {
    if (n.kind !== 'dir') { files.push(n); return }
    for (const c of n.children) visit(c)
    dirs.push(n)
  }
  visit(root)
  return [...files, ...dirs]
}

async function importWhole (root, opts) {
  // candidates are produced lazily (the importer pulls them), so file contents are read just in time
  function * candidates (n) {
    if (n.kind === 'file') yield { path: n.rel, content: content(n) }
    else if (n.kind === 'symlink') yield { path: n.rel, link: n.target }
    else if (n.children.length === 0) yield { path: n.rel }
    else {
      // the importer splits paths on "/" not preceded by "\": a directory name ending in "\" breaks it
      if (n.name.endsWith('\\')) throw new OracleError(`${n.abs}: directory name ends with "\\"; the importer's path splitting cannot represent it (use --dir-sizing complete)`)
      for (const c of n.children) yield * candidates(c)
    }
  }
  const cands = candidates(root)
  const cids = new Map()
  const store = dirStore()
  let top
  for await (const e of importer(cands, store, opts)) {
    if (e.path !== undefined) cids.set(e.path, { cid: e.cid, size: e.size, unixfs: e.unixfs })
    top = e
  }
  if (root.kind === 'dir') {
    // the root directory is flushed last; directories below a HAMT shard may be mislabelled
    // (see dirStore): read every subdirectory's CID from its parent's block(s)
    cids.set(root.rel, { cid: top.cid, size: top.size, unixfs: top.unixfs })
    const resolve = async (n, cid) => {
      const links = await dirLinks(store, cid)
      for (const c of n.children) {
        if (c.kind !== 'dir' || c.children.length === 0) continue
        const l = links.get(c.name)
        if (!l) throw new Error(`${c.rel}: not found in its parent's block`)
        cids.set(c.rel, { cid: l.cid, size: BigInt(l.tsize), unixfs: undefined })
        await resolve(c, l.cid)
      }
    }
    await resolve(root, top.cid)
  }
  // The tree builder yields directories when it flushes them, but an empty directory below the
  // root was a finished leaf entry (not a flushed directory): take its CID from its own import.
  let empty
  const fill = async n => {
    if (n.kind !== 'dir') return
    if (n.children.length === 0 && !cids.has(n.rel)) {
      empty ??= (await all(importer([{ path: 'e' }], nullStore, opts)))[0]
      cids.set(n.rel, { cid: empty.cid, size: empty.size, unixfs: empty.unixfs })
    }
    for (const c of n.children) await fill(c)
  }
  await fill(root)
  return cids
}

/** name -> {cid, tsize} of a basic or HAMT-sharded directory whose blocks are in `store` */
async function dirLinks (store, cid, out = new Map()) {
  let bytes
  for await (const b of store.get(cid)) bytes = b
  const node = dagPb.decode(bytes)
  const hamt = node.Data[1] === 5
  for (const l of node.Links) {
    if (!hamt) out.set(l.Name, { cid: l.Hash, tsize: l.Tsize })
    else if (l.Name.length === 2) await dirLinks(store, l.Hash, out) // sub-shard: 2 hex digits (fanout 256)
    else out.set(l.Name.slice(2), { cid: l.Hash, tsize: l.Tsize })
  }
  return out
}

async function all (it) { const out = []; for await (const x of it) out.push(x); return out }

async function importBottomUp (root, opts, s, report) {
  const cids = new Map()
  async function build (n) {
    if (n.kind !== 'dir') throw new Error('build() wants a directory')
    const sub = new Map()
    for (const c of n.children) if (c.kind === 'dir') sub.set(`d/${c.name}`, await build(c))
    function * candidates () {
      if (n.children.length === 0) yield { path: 'd' }
      for (const c of n.children) {
        const p = `d/${c.name}`
        if (c.kind === 'file') yield { path: p, content: content(c) }
        else if (c.kind === 'symlink') yield { path: p, link: c.target }
        else yield { path: p }
      }
    }
    const dirBuilder = async (dir) => {
      const done = sub.get(dir.path)
      if (!done) throw new Error(`no precomputed directory for ${dir.path}`)
      return { ...done, path: dir.path, originalPath: dir.originalPath }
    }
    const results = new Map()
    for await (const e of importer(candidates(), nullStore, { ...opts, dirBuilder: n.children.length ? dirBuilder : undefined })) {
      if (e.path !== undefined) results.set(e.path, e)
    }
    const self = results.get('d')
    if (!self) throw new Error(`importer gave no directory result for ${n.abs}`)
    for (const c of n.children) {
      const r = c.kind === 'dir' ? sub.get(`d/${c.name}`) : results.get(`d/${c.name}`)
      if (!r) throw new Error(`importer gave no result for ${c.abs}`)
      cids.set(c.rel, { cid: r.cid, size: r.size, unixfs: r.unixfs })
    }
    if (report) compareSharding(n, results, sub, self, s, report)
    return { cid: self.cid, size: self.size, unixfs: self.unixfs }
  }
  const r = await build(root)
  cids.set(root.rel, r)
  return cids
}

/** estimate of a basic directory by kubo's rule ('all') and by plain JS ('js': non-empty subdirs count 0) */
export function shardingEstimates (entries, estimation) {
  // entries: [{name, cidBytes, tsize, nonEmptyDir}]
  let all = estimation === 'block' ? dataFieldSerializedSize(undefined, undefined) : 0
  let js = all
  for (const e of entries) {
    const n = utf8ByteLength(e.name)
    const v = estimation === 'block' ? linkSerializedSize(n, e.cidBytes, Number(e.tsize)) : n + e.cidBytes
    all += v
    if (!e.nonEmptyDir) js += v
  }
  return { all, js }
}

function compareSharding (n, results, sub, self, s, report) {
  if (s.hamtEstimation === 'disabled' || s.hamtThreshold === 0) return
  const entries = n.children.map(c => {
    const r = c.kind === 'dir' ? sub.get(`d/${c.name}`) : results.get(`d/${c.name}`)
    return { name: c.name, cidBytes: r.cid.byteLength, tsize: r.size, nonEmptyDir: c.kind === 'dir' && c.children.length > 0 }
  })
  const est = shardingEstimates(entries, s.hamtEstimation)
  const kubo = est.all > s.hamtThreshold
  const js = est.js > s.hamtThreshold
  const built = self.unixfs?.type === 'hamt-sharded-directory'
  if (built !== kubo) throw new Error(`self-check: ${n.abs} built ${built ? 'HAMT' : 'flat'} but estimate ${est.all} says otherwise`)
  if (kubo !== js) report.push({ path: n.rel, abs: n.abs, kubo: kubo ? 'hamt' : 'flat', js: js ? 'hamt' : 'flat', estimate: est.all, jsEstimate: est.js, threshold: s.hamtThreshold })
}

/**
 * Import each path like `ipfs add -n` would. Returns
 * { lines: [{cid, path}] in kubo's output order (root of each path last), roots: [cid], shardingDiffs }
 */
export async function oracleAdd (paths, settings) {
  const opts = importerOptions(settings)
  const lines = []; const roots = []; const shardingDiffs = []
  for (const p of paths) {
    const root = walk(p, settings)
    let cids
    if (root.kind === 'dir' && settings.dirSizing === 'complete') cids = await importBottomUp(root, opts, settings, shardingDiffs)
    else if (settings.dirSizing === 'js' || settings.dirSizing === 'complete') cids = await importWhole(root, opts)
    else throw new OracleError(`unknown --dir-sizing ${settings.dirSizing} (js|complete)`)
    for (const n of kuboOrder(root)) {
      const r = cids.get(n.rel)
      if (!r) throw new Error(`no CID computed for ${n.rel}`)
      lines.push({ cid: r.cid.toString(), path: n.rel })
    }
    roots.push(cids.get(root.rel).cid.toString())
  }
  return { lines, roots, shardingDiffs }
}
