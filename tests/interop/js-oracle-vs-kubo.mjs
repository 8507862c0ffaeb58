#!/usr/bin/env node
// js-oracle-vs-kubo.mjs [--fast] [--only ID-substring]...
// Checks the JS oracle (lib/oracle.mjs, what js-oracle.mjs prints) against the kubo vectors it is
// meant to agree with: all of them except the ones with mode/mtime flags (ipfs-unixfs writes
// different metadata than kubo: default modes omitted, a one-chunk file's leaf block wrapped) and
// buzhash (no JS chunker); those, and vectors whose input needs a Go toolchain that is absent,
// are SKIPped with the reason.
// Each vector runs as `js-oracle -r --hidden -n <args> PATH` in both directory modes where they
// can differ ("js" and "complete"). Last line "N passed, M failed, K skipped"; exit 1 on failure.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { scratchDir } from './lib/scratch.mjs'
import { loadVectors, runOrder, Inputs, missingRequirement, judge } from './lib/vectors.mjs'
import { parseAddArgs } from './lib/kubo-flags.mjs'
import { oracleAdd, OracleError } from './lib/oracle.mjs'

const argv = process.argv.slice(2)
const fast = argv.includes('--fast')
const only = argv.flatMap((a, i) => argv[i - 1] === '--only' ? [a] : [])
// --break ID: corrupt that vector's expectation (shows that this test can fail)
const breakIds = argv.flatMap((a, i) => argv[i - 1] === '--break' ? [a] : [])

const tmp = scratchDir('cidrun-oracle-vectors-', 3 << 30)
const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true })
process.on('SIGINT', () => { cleanup(); process.exit(130) })
process.on('SIGTERM', () => { cleanup(); process.exit(143) })

let passed = 0; let failed = 0; let skipped = 0
try {
  const inputs = new Inputs(tmp)
  for (const v0 of runOrder(loadVectors())) {
    const v = breakIds.includes(v0.id) ? { ...v0, expect: 'QmDeliberatelyWrongExpectation' } : v0
    if (only.length && !only.some(f => v.id.includes(f))) continue
    const { paths, settings } = parseAddArgs(['-r', '--hidden', '-n', ...v.args, 'PATH'])
    let reason = missingRequirement(v)
    if (!reason && settings.metadata) reason = 'mode/mtime flags: JS writes different metadata than kubo (default modes omitted, one-chunk leaves wrapped)'
    if (!reason && settings.chunker.kind === 'buzhash') reason = 'buzhash: no JS implementation'
    if (!reason && fast && v.slow) reason = 'slow (--fast)'
    if (reason) { skipped++; console.log(`SKIP ${v.id}: ${reason}`); continue }
    paths[0] = inputs.pathFor(v)
    const isDir = fs.lstatSync(paths[0]).isDirectory()
    for (const mode of isDir ? ['js', 'complete'] : ['js']) {
      const t0 = Date.now()
      let why
      try {
        const res = await oracleAdd(paths, { ...settings, dirSizing: mode })
        why = judge(v, res.lines)
      } catch (e) {
        why = [`oracle error: ${e instanceof OracleError ? e.message : e.stack}`]
      }
      const secs = ((Date.now() - t0) / 1000).toFixed(1)
      const name = isDir ? `${v.id} [dir-sizing ${mode}]` : v.id
      if (why.length) { failed++; console.log(`FAIL ${name}: ${why.join('; ')}  [js-oracle -r --hidden -n ${v.args.join(' ')}; source ${v.source}]`) } else { passed++; console.log(`PASS ${name} (${secs}s)`) }
    }
  }
} finally { cleanup() }
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exitCode = failed ? 1 : 0
