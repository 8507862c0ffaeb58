#!/usr/bin/env node
// usr-share.mjs CIDRUN [--dir DIR] [--plain-js]
//
// A real tree: `CIDRUN add -r -n -Q DIR` (default /usr/share) must print the same root CID as the
// JS oracle in each of: default, --cid-version 1, --profile unixfs-v1-2025.
//
// Before comparing, the tree is scanned for what both tools must refuse or treat differently:
//   - sockets, fifos, devices: kubo fails with "unrecognized file type"
//   - unreadable files or directories: kubo fails
//   - names or symlink targets that are not UTF-8: dag-pb names are UTF-8 strings; JS cannot hold
//     the raw bytes kubo would write
// If any exist, the whole tree cannot be compared: cidrun must refuse it (exit != 0), and every
// top-level subtree without such entries is compared instead. Dotfiles are skipped by both (no -H).
//
// HAMT: the oracle builds directories bottom-up ('complete'), i.e. with kubo's rule, and lists
// every directory where plain ipfs-unixfs-importer (unflushed subdirectories count 0 bytes)
// would decide differently. Where that list is empty, plain JS gives the same CIDs
// by construction (--plain-js runs it as well, to see it: about 3x slower).
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { parseAddArgs } from './lib/kubo-flags.mjs'
import { oracleAdd } from './lib/oracle.mjs'
import { parseAdded } from './lib/vectors.mjs'

const argv = process.argv.slice(2)
const cidrun = argv.shift()
if (!cidrun) { console.error('usage: usr-share.mjs CIDRUN [--dir DIR] [--plain-js] [--break]'); process.exit(2) }
const opt = n => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined }
const dir = path.resolve(opt('--dir') ?? '/usr/share')
const plainJs = argv.includes('--plain-js')
const breakIt = argv.includes('--break') // deliberately wrong expectation: shows the test can fail

let passed = 0; let failed = 0
const pass = (n, x = '') => { passed++; console.log(`PASS ${n}${x}`) }
const fail = (n, w) => { failed++; console.log(`FAIL ${n}: ${w}`) }

const utf8 = new TextDecoder('utf-8', { fatal: true })
function isUtf8 (buf) { try { utf8.decode(buf); return true } catch { return false } }

/** scan like kubo would walk it (no -H); returns {entries, offenders: [{path, why}]} */
function scan (top) {
  const offenders = []; let entries = 0; let hidden = 0
  const visit = (p, name) => {
    entries++
    if (name !== null && !isUtf8(name)) offenders.push({ path: p, why: 'name is not UTF-8' })
    let st
    try { st = fs.lstatSync(p) } catch (e) { offenders.push({ path: p, why: e.code }); return }
    if (st.isSymbolicLink()) {
      if (!isUtf8(fs.readlinkSync(p, { encoding: 'buffer' }))) offenders.push({ path: p, why: 'symlink target is not UTF-8' })
    } else if (st.isFile()) {
      try { fs.closeSync(fs.openSync(p, 'r')) } catch (e) { offenders.push({ path: p, why: `unreadable (${e.code})` }) }
    } else if (st.isDirectory()) {
      let names
      try { names = fs.readdirSync(p, { encoding: 'buffer' }) } catch (e) { offenders.push({ path: p, why: `unreadable directory (${e.code})` }); return }
      for (const n of names) {
        if (n[0] === 0x2e) { hidden++; continue } // '.': skipped without -H
        visit(path.join(p, n.toString()), n)
      }
    } else {
      const kind = st.isSocket() ? 'socket' : st.isFIFO() ? 'fifo' : st.isBlockDevice() ? 'block device' : st.isCharacterDevice() ? 'character device' : 'unknown type'
      offenders.push({ path: p, why: `${kind}: kubo refuses it ("unrecognized file type")` })
    }
  }
  visit(top, null)
  return { entries, hidden, offenders }
}

function runCidrun (args) {
  const r = spawnSync(cidrun, args, { encoding: 'utf8', maxBuffer: 1 << 30, timeout: 600_000 })
  const err = r.error ? `could not run: ${r.error.message}` : r.status !== 0 ? `exit ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' | ')}` : null
  return { ...r, err }
}

async function compare (target, flags, label) {
  const name = `${label} [${flags.join(' ') || 'default'}]`
  const t0 = Date.now()
  const r = runCidrun(['add', '-r', '-n', '-Q', ...flags, target])
  const tc = (Date.now() - t0) / 1000
  const { paths, settings } = parseAddArgs(['-r', '-n', ...flags, target])
  const t1 = Date.now()
  const res = await oracleAdd(paths, { ...settings, dirSizing: 'complete' })
  const tj = (Date.now() - t1) / 1000
  const want = breakIt ? 'QmDeliberatelyWrongExpectation' : res.roots[0]
  for (const d of res.shardingDiffs) {
    console.log(`NOTE ${name}: ${d.abs}: kubo's rule gives ${d.kubo} (estimate ${d.estimate} > ${d.threshold}: ${d.estimate > d.threshold}), plain JS would give ${d.js} (estimate ${d.jsEstimate}); compared against kubo's rule`)
  }
  if (plainJs) {
    const plain = await oracleAdd(paths, { ...settings, dirSizing: 'js' })
    const agree = plain.roots[0] === res.roots[0]
    console.log(`NOTE ${name}: plain JS root ${plain.roots[0]} ${agree ? '=' : '!='} bottom-up root${!agree && !res.shardingDiffs.length ? ' (UNEXPECTED: no sharding difference was found)' : ''}`)
  }
  const got = r.stdout?.trim().split('\n').pop()
  if (r.err) { fail(name, r.err); return }
  if (got === want) { pass(name, ` ${got} (cidrun ${tc.toFixed(1)}s, JS ${tj.toFixed(1)}s, ${res.lines.length} entries${res.shardingDiffs.length ? `, ${res.shardingDiffs.length} dirs decided by kubo's rule where plain JS differs` : ''})`); return }
  // localize: which entries differ (deepest first = where the difference starts)
  const all = runCidrun(['add', '-r', '-n', ...flags, target])
  const g = new Map(parseAdded(all.stdout).map(l => [l.path, l.cid]))
  const diffs = res.lines.filter(l => g.get(l.path) !== l.cid)
  diffs.sort((a, b) => b.path.split('/').length - a.path.split('/').length)
  const show = diffs.slice(0, 8).map(l => `"${l.path}": cidrun ${g.get(l.path) ?? '(not printed)'} | js ${l.cid}`)
  fail(name, `root: cidrun ${got} | js ${want}; ${diffs.length} of ${res.lines.length} entries differ, deepest first: ${show.join(', ')}`)
}

const variants = [[], ['--cid-version', '1'], ['--profile', 'unixfs-v1-2025']]
try {
  if (!fs.existsSync(dir)) throw new Error(`${dir} does not exist`)
  const s = scan(dir)
  console.log(`# ${dir}: ${s.entries} entries to add (${s.hidden} dot-entries skipped without -H), ${s.offenders.length} that kubo refuses or JS cannot represent`)
  if (s.offenders.length === 0) {
    for (const f of variants) await compare(dir, f, dir)
  } else {
    for (const o of s.offenders.slice(0, 20)) console.log(`NOTE offender: ${o.path}: ${o.why}`)
    // kubo fails on these; cidrun must too
    const r = runCidrun(['add', '-r', '-n', '-Q', dir])
    if (r.status === 0) fail(`${dir} refused`, `cidrun exit 0 on a tree kubo refuses (${s.offenders[0].path}: ${s.offenders[0].why})`)
    else pass(`${dir} refused`, ` (exit ${r.status}: ${(r.stderr ?? '').trim().split('\n').pop()})`)
    // compare every top-level subtree that is clean
    const bad = s.offenders.map(o => o.path)
    for (const n of fs.readdirSync(dir).filter(n => !n.startsWith('.')).sort()) {
      const p = path.join(dir, n)
      if (bad.some(b => b === p || b.startsWith(p + '/'))) { console.log(`NOTE ${p}: not compared (contains an offender)`); continue }
      for (const f of variants) await compare(p, f, p)
    }
  }
} catch (e) { fail('harness', e.stack) }
console.log(`${passed} passed, ${failed} failed`)
process.exitCode = failed ? 1 : 0
