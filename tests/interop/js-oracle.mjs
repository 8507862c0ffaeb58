#!/usr/bin/env node
// js-oracle.mjs [ipfs add flags] PATH...
//
// What `ipfs add -n` (kubo) prints for PATH, computed by the JS reference importer
// (ipfs-unixfs-importer) configured to match kubo for the given flags:
//   -r, -H/--hidden, -n (always: nothing is stored), -q, -Q, -t/--trickle,
//   --cid-version 0|1, --raw-leaves[=false], --chunker size-N|rabin[-AVG|-MIN-AVG-MAX],
//   --max-file-links N, --profile legacy-cid-v0|unixfs-v1-2025, --hamt-threshold SIZE
// and two flags of its own:
//   --hamt-estimation links|block|disabled   kubo's Import.UnixFSHAMTDirectorySizeEstimation
//   --dir-sizing js|complete                 js (default): plain importer; complete: every
//       directory sized with all its children built (kubo's rule); also prints to stderr one
//       "SHARDING-DIFFERS ..." line per directory where plain JS decides otherwise.
// Not modelled (exit 2, JS differs from kubo or cannot do it): --preserve-mode/-mtime, --mode,
// --mtime, --mtime-nsecs, --chunker buzhash.
// Output: "added <cid> <path>" per entry, the root last (-q: CIDs only, -Q: root CID only).
import { parseAddArgs } from './lib/kubo-flags.mjs'
import { oracleAdd, OracleError } from './lib/oracle.mjs'

async function main () {
  let parsed
  try { parsed = parseAddArgs(process.argv.slice(2)) } catch (e) {
    console.error(`js-oracle: ${e.message}`); return 2
  }
  const { paths, settings } = parsed
  if (settings.extra.length) { console.error(`js-oracle: unsupported flag(s): ${settings.extra.map(f => '--' + f).join(' ')}`); return 2 }
  if (paths.length === 0) { console.error('usage: js-oracle.mjs [ipfs add flags] PATH...'); return 2 }
  let res
  try { res = await oracleAdd(paths, settings) } catch (e) {
    if (e instanceof OracleError) {
      console.error(`js-oracle: ${e.message}`)
      return /not modelled|no buzhash/.test(e.message) ? 2 : 1
    }
    throw e
  }
  for (const d of res.shardingDiffs) {
    console.error(`SHARDING-DIFFERS ${d.path}: kubo rule ${d.kubo} (estimate ${d.estimate}), plain JS ${d.js} (estimate ${d.jsEstimate}), threshold ${d.threshold}`)
  }
  const out = []
  if (settings.quieter) out.push(...res.roots)
  else if (settings.quiet) out.push(...res.lines.map(l => l.cid))
  else out.push(...res.lines.map(l => `added ${l.cid} ${l.path}`))
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''))
  return 0
}

process.exitCode = await main()
