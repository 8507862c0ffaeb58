#!/usr/bin/env node
// js-compare.mjs CIDRUN [--only NAME-substring]... [--break NAME]
//
// 1. Generated trees (gen-trees.mjs), each in its flag variants: `CIDRUN add -r -n <flags> PATH`
//    against the JS oracle (lib/oracle.mjs); every printed path and CID must match.
// 2. Many non-empty subdirectories around the HAMT threshold, where plain JS is known to differ
//    from kubo (ipfs-unixfs-importer's dir-flat.ts counts a subdirectory not yet flushed as 0
//    bytes): the expected decision is computed by kubo's rule (lib/kubo-rule.mjs); cidrun's root
//    must equal the bottom-up oracle ('complete'), and its root block (via `CIDRUN block get`)
//    must be a HAMT shard.
// 3. mode/mtime (UnixFS 1.5), where JS differs from kubo (kubo refuses raw leaves with them;
//    ipfs-unixfs omits the default modes 0644/0755; its importer wraps a one-chunk file's encoded
//    leaf block as data): every node cidrun writes is read back with `CIDRUN block get`, decoded
//    with @ipld/dag-pb, and its Data must be exactly the bytes kubo writes (lib/unixfs-pb.mjs):
//    mode = st_mode & 07777 even for 0644/0755, none for perms 0 and for symlinks; mtime seconds
//    always, nanos only if > 0; a file's metadata only on its root node; raw leaves off; explicit
//    raw leaves + metadata = error.
// Without `block get` in CIDRUN, the block checks print SKIP lines (TODO until that command exists).
// One PASS/FAIL/SKIP line per check, then "N passed, M failed, K skipped"; exit 1 on any failure.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync, execFileSync } from 'node:child_process'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { base32 } from 'multiformats/bases/base32'
import { scratchDir } from './lib/scratch.mjs'
import { trees, makeTree, fixedNames, BASIC } from './gen-trees.mjs'
import { parseAddArgs } from './lib/kubo-flags.mjs'
import { oracleAdd } from './lib/oracle.mjs'
import { parseAdded } from './lib/vectors.mjs'
import { decide, linksEstimate, blockEstimate } from './lib/kubo-rule.mjs'
import { encodeData, decodeData, showData, TYPE } from './lib/unixfs-pb.mjs'

const argv = process.argv.slice(2)
const cidrun = argv.shift()
if (!cidrun) { console.error('usage: js-compare.mjs CIDRUN [--only NAME-substring]... [--break NAME]'); process.exit(2) }
const only = argv.flatMap((a, i) => argv[i - 1] === '--only' ? [a] : [])
const breakNames = argv.flatMap((a, i) => argv[i - 1] === '--break' ? [a] : [])
const wanted = name => !only.length || only.some(f => name.includes(f))

const tmp = scratchDir('cidrun-js-compare-', 512 << 20)
const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true })
process.on('SIGINT', () => { cleanup(); process.exit(130) })
process.on('SIGTERM', () => { cleanup(); process.exit(143) })

let passed = 0; let failed = 0; let skipped = 0
const pass = (name, extra = '') => { passed++; console.log(`PASS ${name}${extra}`) }
const fail = (name, why) => { failed++; console.log(`FAIL ${name}: ${why}`) }
const skip = (name, why) => { skipped++; console.log(`SKIP ${name}: ${why}`) }

function runCidrun (args, env = {}) {
  const r = spawnSync(cidrun, args, { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 300_000, env: { ...process.env, ...env } })
  const err = r.error ? `could not run: ${r.error.message}` : r.status !== 0 ? `exit ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' | ')}` : null
  return { ...r, err, lines: parseAdded(r.stdout) }
}

/** differences between cidrun's lines and the oracle's, as short text (empty = same) */
function diffLines (got, want) {
  const why = []
  const g = new Map(got.map(l => [l.path, l.cid])); const w = new Map(want.map(l => [l.path, l.cid]))
  const gr = got.at(-1); const wr = want.at(-1)
  if (!gr || gr.cid !== wr.cid || gr.path !== wr.path) why.push(`root: cidrun ${gr ? `${gr.cid} ${gr.path}` : '(none)'} | js ${wr.cid} ${wr.path}`)
  const differing = [...w].filter(([p, c]) => g.has(p) && g.get(p) !== c)
  const missing = [...w.keys()].filter(p => !g.has(p)); const extra = [...g.keys()].filter(p => !w.has(p))
  if (differing.length) why.push(`${differing.length} CIDs differ, e.g. ${differing.slice(0, 4).map(([p, c]) => `"${p}": cidrun ${g.get(p)} | js ${c}`).join(', ')}`)
  if (missing.length) why.push(`${missing.length} paths not printed by cidrun, e.g. ${missing.slice(0, 4).map(p => `"${p}"`).join(', ')}`)
  if (extra.length) why.push(`${extra.length} paths printed only by cidrun, e.g. ${extra.slice(0, 4).map(p => `"${p}"`).join(', ')}`)
  if (!why.length && got.length !== want.length) why.push(`${got.length} lines printed, ${want.length} expected (duplicates?)`)
  return why
}

// ---- block access ----------------------------------------------------------------------------
let blockGet // null = unavailable (reason in blockGetWhy)
let blockGetWhy = ''
function haveBlockGet () {
  if (blockGet === undefined) {
    // CLI11 prints the parent's help (exit 0) for an unknown subcommand, so read the listings
    const top = spawnSync(cidrun, ['--help'], { encoding: 'utf8' }).stdout ?? ''
    const blk = spawnSync(cidrun, ['block', '--help'], { encoding: 'utf8' }).stdout ?? ''
    const sub = (text, name) => new RegExp(`^Subcommands:[\\s\\S]*^\\s+${name}\\s`, 'm').test(text)
    blockGet = sub(top, 'block') && sub(blk, 'get')
    if (!blockGet) blockGetWhy = `\`${path.basename(cidrun)} block get\` is not available yet (not listed in --help) — TODO: these checks run once it exists`
  }
  return blockGet
}
// without `block get`, blocks are read from cidrun's flatfs store when --flatfs-fallback is given
// (on by default; --no-flatfs-fallback turns it off and the checks SKIP)
const flatfsOk = !argv.includes('--no-flatfs-fallback')
let flatfsSaid = false
function flatfsNote (name) {
  if (!flatfsOk) return false
  if (!flatfsSaid) { console.log(`NOTE ${blockGetWhy}; reading blocks from the flatfs store in $CIDRUN_PATH instead (TODO: switch to block get)`); flatfsSaid = true }
  return true
}

function getBlock (repo, cid) {
  if (!haveBlockGet()) {
    // fallback until `block get` exists: the store is kubo's flatfs layout
    // (docs/ARCHITECTURE.md, "On disk"):
    // blocks/<next-to-last 2 chars>/<base32 multihash, upper case, no prefix>.data
    const c = CID.parse(cid)
    const key = base32.encode(c.multihash.bytes).slice(1).toUpperCase()
    const f = path.join(repo, 'blocks', key.slice(-3, -1), `${key}.data`)
    if (!fs.existsSync(f)) throw new Error(`block ${cid} not found (no \`block get\`; looked for ${f})`)
    return { cid: c, bytes: new Uint8Array(fs.readFileSync(f)) }
  }
  const r = spawnSync(cidrun, ['block', 'get', cid], { maxBuffer: 1 << 26, env: { ...process.env, CIDRUN_PATH: repo } })
  if (r.status !== 0) throw new Error(`block get ${cid}: exit ${r.status}: ${String(r.stderr).trim()}`)
  const c = CID.parse(cid)
  return { cid: c, bytes: new Uint8Array(r.stdout) }
}

// ---- 1. generated trees against the JS oracle -------------------------------------------------
async function compareTrees () {
  for (const t of trees) {
    if (!wanted(t.name)) continue
    const dir = path.join(tmp, 'trees')
    let p
    try { p = makeTree(t, dir) } catch (e) { fail(t.name, `could not create the tree: ${e.message}`); continue }
    for (const flags of t.variants) {
      const name = `${t.name} [${flags.join(' ') || 'default'}]`
      const r = runCidrun(['add', '-r', '-n', ...flags, p])
      let want
      try {
        const { paths, settings } = parseAddArgs(['-r', '-n', ...flags, p])
        want = (await oracleAdd(paths, { ...settings, dirSizing: t.dirSizing ?? 'js' })).lines
      } catch (e) { fail(name, `oracle error: ${e.message}`); continue }
      if (breakNames.includes(t.name)) want = [...want.slice(0, -1), { ...want.at(-1), cid: 'QmDeliberatelyWrongExpectation' }]
      const why = r.err ? [r.err] : diffLines(r.lines, want)
      if (why.length && t.unverified && !r.err) { skip(name, `differs from JS, but ${t.unverified}: ${why[0]}`); continue }
      if (why.length) fail(name, `${why.join('; ')}  [cidrun add -r -n ${flags.join(' ')} <${t.name}>]`)
      else pass(name, ` (${want.length} entries)`)
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

// ---- 2. many non-empty subdirectories: kubo's rule --------------------------------------------
async function compareSubdirRule () {
  const name0 = 'dir-subdirs-over-threshold'
  if (!wanted(name0)) return
  // 1300 subdirectories with 200-byte names, each holding one file "f" = "x"; no files directly.
  // Plain JS counts each unflushed subdirectory as 0 bytes (estimate 0: basic); kubo counts them.
  const p = path.join(tmp, 'subdirs', 'dir')
  const names = fixedNames(1300, 200, 's')
  for (const n of names) { fs.mkdirSync(path.join(p, n), { recursive: true }); fs.writeFileSync(path.join(p, n, 'f'), 'x') }
  for (const flags of BASIC) {
    const name = `${name0} [${flags.join(' ') || 'default'}]`
    const { paths, settings } = parseAddArgs(['-r', '-n', ...flags, p])
    // kubo's decision from the final entry set: every entry is a directory CID (34 bytes v0, 36 v1);
    // the Tsize of a one-file directory is under 2^14, so 1..2 varint bytes bound the block estimate
    const entries = names.map(n => ({ name: n, cidBytes: settings.cidVersion === 0 ? 34 : 36, tsize: [1, 16383] }))
    const expected = decide(settings.hamtEstimation, entries, settings.hamtThreshold)
    const est = settings.hamtEstimation === 'links' ? linksEstimate(entries) : blockEstimate(entries).join('..')
    if (expected !== 'hamt') { fail(name, `harness: expected this tree to shard by kubo's rule, rule says ${expected} (estimate ${est})`); continue }
    const complete = await oracleAdd(paths, { ...settings, dirSizing: 'complete' })
    const plain = await oracleAdd(paths, { ...settings, dirSizing: 'js' })
    if (complete.roots[0] === plain.roots[0]) { fail(name, 'harness: plain JS and the bottom-up oracle agree here, so this tree does not exercise how the two count unflushed subdirectories'); continue }
    const r = runCidrun(['add', '-r', '-n', ...flags, p])
    const root = r.lines.at(-1)?.cid
    if (r.err) { fail(name, r.err); continue }
    const want = breakNames.includes(name0) ? 'QmDeliberatelyWrongExpectation' : complete.roots[0]
    if (root !== want) {
      fail(name, `kubo's rule: HAMT (estimate ${est} > ${settings.hamtThreshold}); cidrun root ${root} | bottom-up JS (kubo rule) ${want} | plain JS (basic, known to differ) ${plain.roots[0]}`)
      continue
    }
    pass(name, ` (kubo rule: HAMT, estimate ${est}; plain JS would keep it basic: ${plain.roots[0]})`)
    // the root block itself must be a HAMT shard
    const bname = `${name0} root block is a HAMT shard [${flags.join(' ') || 'default'}]`
    if (!haveBlockGet() && !flatfsNote(bname)) { skip(bname, blockGetWhy); continue }
    try {
      const repo = path.join(tmp, 'repo-subdirs')
      const s = runCidrun(['add', '-r', '-Q', ...flags, p], { CIDRUN_PATH: repo })
      if (s.err) throw new Error(s.err)
      const node = dagPb.decode(getBlock(repo, s.stdout.trim()).bytes)
      const f = decodeData(node.Data)
      if (f.type !== TYPE.hamt || f.fanout !== 256n || f.hashType !== 0x22n) fail(bname, `root block: ${showData(f)}`)
      else pass(bname)
    } catch (e) { fail(bname, e.message) }
  }
  fs.rmSync(path.join(tmp, 'subdirs'), { recursive: true, force: true })
}

// ---- 3. mode and mtime ------------------------------------------------------------------------
// [path, kind, mode, mtime "SECS[.NANOS]" for touch -d @...]
const META_TREE = [
  ['plain', 'file', 0o644, '1700000000.123456789'],
  ['exec', 'file', 0o755, '1700000000'],
  ['setuid', 'file', 0o4755, '1700000001.000000001'],
  ['setgid', 'file', 0o2755, '-1'],
  ['setuid-setgid-sticky', 'file', 0o7711, '-1.5'],
  ['noperm', 'file', 0o000, '1600000000.999999999'],
  ['big', 'bigfile', 0o640, '1234567890.5'],
  ['sticky-dir', 'dir', 0o1777, '-315359999.5'],
  ['sticky-dir/inner', 'file', 0o600, '86400'],
  ['emptydir', 'dir', 0o700, '1000000000'],
  ['link', 'symlink', null, '1600000000.25'],
  ['sticky-dir/dangling', 'symlink', null, '-2000000000']
]

function makeMetaTree (root) {
  fs.mkdirSync(root, { recursive: true })
  for (const [rel, kind] of META_TREE) {
    const p = path.join(root, rel)
    if (kind === 'dir') fs.mkdirSync(p, { recursive: true })
    else if (kind === 'file') fs.writeFileSync(p, `${rel}\n`)
    else if (kind === 'bigfile') fs.writeFileSync(p, Buffer.alloc(262144 * 2 + 7, 0x61)) // 3 chunks
    else fs.symlinkSync(rel === 'link' ? 'plain' : 'no/such/target', p)
  }
  // deepest first: setting a child's times changes nothing above, but creating it did
  for (const [rel, kind, mode, mtime] of [...META_TREE].sort((a, b) => b[0].split('/').length - a[0].split('/').length)) {
    const p = path.join(root, rel)
    if (kind !== 'symlink') fs.chmodSync(p, mode)
    execFileSync('touch', ['-h', '-d', `@${mtime}`, p])
  }
  fs.chmodSync(root, 0o750)
  execFileSync('touch', ['-d', '@1500000000.000000000', root])
}

/** what kubo writes for the entry at p: {mode?, mtime?} by the flags */
function expectedMeta (p, settings) {
  const st = fs.lstatSync(p, { bigint: true })
  const isLink = st.isSymbolicLink()
  const out = {}
  if (settings.mode !== undefined) { if (!isLink) out.mode = settings.mode } else if (settings.preserveMode && !isLink) {
    const m = Number(st.mode) & 0o7777
    if (m !== 0) out.mode = m
  }
  if (settings.mtime !== undefined) {
    out.mtime = { secs: BigInt(settings.mtime) }
    if (settings.mtimeNsecs) out.mtime.nsecs = settings.mtimeNsecs
  } else if (settings.preserveMtime) {
    const ns = st.mtimeNs
    let secs = ns / 1_000_000_000n; let nsecs = ns % 1_000_000_000n
    if (nsecs < 0n) { secs -= 1n; nsecs += 1_000_000_000n } // floor, as Go's time.Unix()/Nanosecond()
    out.mtime = { secs }
    if (nsecs > 0n) out.mtime.nsecs = Number(nsecs)
  }
  return out
}

function checkNode (repo, cid, p, settings, label) {
  const why = []
  const { cid: c, bytes } = getBlock(repo, cid)
  const meta = expectedMeta(p, settings)
  if (c.code !== dagPb.code) return [`${label}: ${cid} is not dag-pb (codec 0x${c.code.toString(16)}): metadata needs a dag-pb node (raw leaves must be off)`]
  const node = dagPb.decode(bytes)
  const f = decodeData(node.Data)
  // keep the structural fields cidrun wrote, replace mode/mtime by kubo's: the bytes must be identical
  const want = encodeData({ ...f, mode: meta.mode, mtime: meta.mtime })
  if (Buffer.compare(Buffer.from(want), Buffer.from(node.Data)) !== 0) {
    why.push(`${label}: Data ${showData(f)} | kubo writes ${showData(decodeData(want))}`)
  }
  // ipfs-unixfs must read the same values back (and the type must fit the file kind)
  const u = UnixFS.unmarshal(node.Data)
  const st = fs.lstatSync(p)
  const kind = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? ['directory', 'hamt-sharded-directory'] : ['file']
  if (![kind].flat().includes(u.type)) why.push(`${label}: ipfs-unixfs reads type ${u.type}`)
  if (meta.mtime && (u.mtime?.secs !== meta.mtime.secs || (u.mtime?.nsecs ?? 0) !== (meta.mtime.nsecs ?? 0))) why.push(`${label}: ipfs-unixfs reads mtime ${u.mtime?.secs}.${u.mtime?.nsecs}`)
  // a file's metadata sits on its root only: children (leaves) carry none
  if (u.type === 'file' && node.Links.length) {
    for (const l of node.Links.slice(0, 2)) {
      if (l.Hash.code !== dagPb.code) continue
      const child = decodeData(dagPb.decode(getBlock(repo, l.Hash.toString()).bytes).Data)
      if (child.mode !== undefined || child.mtime !== undefined) why.push(`${label}: leaf ${l.Hash} carries metadata (${showData(child)}); kubo puts it on the root only`)
    }
  }
  if (u.type === 'hamt-sharded-directory') {
    for (const l of node.Links.filter(l => l.Name.length === 2).slice(0, 2)) { // sub-shards
      const child = decodeData(dagPb.decode(getBlock(repo, l.Hash.toString()).bytes).Data)
      if (child.mode !== undefined || child.mtime !== undefined) why.push(`${label}: sub-shard ${l.Hash} carries metadata; kubo puts it on the root shard only`)
    }
  }
  return why
}

async function compareMeta () {
  const name0 = 'meta'
  if (!wanted(name0)) return
  const root = path.join(tmp, 'meta', 'tree')
  makeMetaTree(root)
  const hamtDir = path.join(tmp, 'meta', 'hamt')
  fs.mkdirSync(hamtDir, { recursive: true })
  for (const n of fixedNames(300, 8, 'h')) fs.writeFileSync(path.join(hamtDir, n), n)
  fs.chmodSync(hamtDir, 0o711); execFileSync('touch', ['-d', '@1400000000.7', hamtDir])
  const variants = [
    ['--preserve-mode'], ['--preserve-mtime'], ['--preserve-mode', '--preserve-mtime'],
    ['--preserve-mode', '--preserve-mtime', '--cid-version', '1'],
    ['--mode', '0753'], ['--mtime', '1603539720', '--mtime-nsecs', '54321'], ['--mode', '0640', '--mtime', '-86400'],
    ['--preserve-mode', '--preserve-mtime', '--hamt-threshold', '1B'] // sharded directories
  ]
  // refusals: kubo errors when raw leaves are asked for explicitly together with metadata
  for (const flags of [['--preserve-mode', '--raw-leaves'], ['--preserve-mtime', '--profile', 'unixfs-v1-2025'], ['--mode', '0644', '--raw-leaves=true']]) {
    const name = `${name0} refuses [${flags.join(' ')}]`
    const r = runCidrun(['add', '-r', '-n', ...flags, root])
    if (r.error) fail(name, `could not run: ${r.error.message}`)
    else if (r.status === 0) fail(name, `exit 0, kubo refuses raw leaves with mode/mtime; printed ${r.lines.at(-1)?.cid}`)
    else pass(name, ` (exit ${r.status}: ${(r.stderr ?? '').trim().split('\n').pop()})`)
  }
  for (const flags of variants) {
    const name = `${name0} [${flags.join(' ')}]`
    if (!haveBlockGet() && !flatfsNote(name)) { skip(name, blockGetWhy); continue }
    const repo = path.join(tmp, 'repo-meta')
    const target = flags.includes('--hamt-threshold') ? hamtDir : root
    const { settings } = parseAddArgs(['-r', ...flags, target])
    const r = runCidrun(['add', '-r', ...flags, target], { CIDRUN_PATH: repo })
    if (r.err) { fail(name, r.err); continue }
    const why = []
    const base = path.dirname(target)
    for (const l of r.lines) {
      try { why.push(...checkNode(repo, l.cid, path.join(base, l.path), settings, `"${l.path}"`)) } catch (e) { why.push(`"${l.path}": ${e.message}`) }
    }
    const expectedCount = flags.includes('--hamt-threshold') ? 301 : META_TREE.length + 1
    if (r.lines.length !== expectedCount) why.push(`${r.lines.length} entries printed, ${expectedCount} expected`)
    if (breakNames.includes(name0)) why.push('deliberately broken (--break)')
    if (why.length) fail(name, why.slice(0, 6).join('; ') + (why.length > 6 ? `; ... (${why.length} problems)` : ''))
    else pass(name, ` (${r.lines.length} nodes decoded)`)
  }
  fs.rmSync(path.join(tmp, 'meta'), { recursive: true, force: true })
}

try {
  await compareTrees()
  await compareSubdirRule()
  await compareMeta()
} catch (e) {
  fail('harness', e.stack)
} finally { cleanup() }
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exitCode = failed ? 1 : 0
