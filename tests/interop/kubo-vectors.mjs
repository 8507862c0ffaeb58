#!/usr/bin/env node
// kubo-vectors.mjs CIDRUN [--fast] [--only ID-substring]...
// Runs every kubo vector (kubo-vectors.json) through `CIDRUN add -r --hidden -n <args> PATH` and
// compares what it prints with the CIDs kubo printed: the root CID (`expect`), the CIDs of named
// paths (`expectEntries`) and the sorted list of every printed CID (`expectAllSorted`).
// One PASS/FAIL/SKIP line per vector, then "N passed, M failed, K skipped"; exit 1 on any failure.
// --fast skips the vectors marked slow. Inputs are generated in a temp dir that is removed.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { scratchDir } from './lib/scratch.mjs'
import { loadVectors, runOrder, Inputs, missingRequirement, parseAdded, judge } from './lib/vectors.mjs'

const argv = process.argv.slice(2)
const cidrun = argv.shift()
if (!cidrun) { console.error('usage: kubo-vectors.mjs CIDRUN [--fast] [--only ID-substring]...'); process.exit(2) }
const fast = argv.includes('--fast')
const only = argv.flatMap((a, i) => argv[i - 1] === '--only' ? [a] : [])

const tmp = scratchDir('cidrun-kubo-vectors-', 3 << 30)
const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true })
process.on('SIGINT', () => { cleanup(); process.exit(130) })
process.on('SIGTERM', () => { cleanup(); process.exit(143) })

let passed = 0; let failed = 0; let skipped = 0
try {
  const inputs = new Inputs(tmp)
  for (const v of runOrder(loadVectors())) {
    if (only.length && !only.some(f => v.id.includes(f))) continue
    const missing = missingRequirement(v)
    if (missing || (fast && v.slow)) {
      skipped++
      console.log(`SKIP ${v.id}: ${missing ?? 'slow (--fast)'}`)
      continue
    }
    const input = inputs.pathFor(v)
    const args = ['add', '-r', '--hidden', '-n', ...v.args, input]
    const t0 = Date.now()
    const r = spawnSync(cidrun, args, { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 300_000 })
    const secs = ((Date.now() - t0) / 1000).toFixed(1)
    const lines = parseAdded(r.stdout)
    const why = []
    if (r.error) why.push(`could not run: ${r.error.message}`)
    else if (r.status !== 0) why.push(`exit ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' | ')}`)
    why.push(...judge(v, lines))
    const shown = `cidrun add -r --hidden -n ${v.args.join(' ')}${v.args.length ? ' ' : ''}<${v.recipe.kind}${v.target ? ' ' + v.target : ''}>`
    if (why.length) {
      failed++
      console.log(`FAIL ${v.id}: ${why.join('; ')}  [${shown}; source ${v.source}]`)
    } else {
      passed++
      console.log(`PASS ${v.id} (${secs}s)`)
    }
  }
} finally { cleanup() }
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exitCode = failed ? 1 : 0
