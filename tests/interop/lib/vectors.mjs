// The kubo vectors (kubo-vectors.json): loading, inputs on disk, and judging an `add` output.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { materialize, writeChachaFile, missingRequirement } from './inputs.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))

export function loadVectors () {
  return JSON.parse(fs.readFileSync(path.join(HERE, '..', 'kubo-vectors.json'), 'utf8')).vectors
}

/**
 * The order to run vectors in: as listed, except that chacha20 files of one seed run largest
 * first, so that one generated file can be cut down (the stream of a seed is a prefix of any
 * longer one) instead of writing 1 GiB twice.
 */
export function runOrder (vectors) {
  const firstIndex = new Map()
  vectors.forEach((v, i) => { if (v.recipe.kind === 'chacha20' && !firstIndex.has(v.recipe.seed)) firstIndex.set(v.recipe.seed, i) })
  const key = (v, i) => v.recipe.kind === 'chacha20' ? [firstIndex.get(v.recipe.seed), -v.recipe.size] : [i, 0]
  return vectors.map((v, i) => ({ v, k: key(v, i) }))
    .sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1])
    .map(x => x.v)
}

/** Inputs under one temp dir, each recipe made once (chacha20: once per seed, then truncated). */
export class Inputs {
  constructor (dir) { this.dir = dir; this.made = new Map(); this.chacha = new Map(); this.n = 0 }

  /** path to add for vector v (creates the input if needed), or throws */
  pathFor (v) {
    const r = v.recipe
    let root
    if (r.kind === 'chacha20') {
      const have = this.chacha.get(r.seed)
      if (have && have.size >= r.size) {
        if (have.size !== r.size) { fs.truncateSync(have.path, r.size); have.size = r.size }
        root = have.path
      } else {
        if (have) fs.rmSync(have.path, { force: true })
        const d = path.join(this.dir, `in${this.n++}`)
        fs.mkdirSync(d)
        root = path.join(d, 'input')
        writeChachaFile(root, r.seed, r.size)
        this.chacha.set(r.seed, { path: root, size: r.size })
      }
    } else {
      const key = JSON.stringify(r)
      if (!this.made.has(key)) this.made.set(key, materialize(r, path.join(this.dir, `in${this.n++}`)))
      root = this.made.get(key)
    }
    return v.target ? path.join(root, v.target) : root
  }
}

export { missingRequirement }

/** "added <cid> <path>" lines -> [{cid, path}] (a path may contain spaces) */
export function parseAdded (stdout) {
  const out = []
  for (const line of String(stdout ?? '').split('\n')) {
    const m = /^added (\S+) (.*)$/.exec(line)
    if (m) out.push({ cid: m[1], path: m[2] })
  }
  return out
}

/**
 * Compare an add result with vector v. `lines` = parsed "added" lines (root last).
 * Returns a list of differences (empty = pass).
 */
export function judge (v, lines) {
  const why = []
  const root = lines.length ? lines[lines.length - 1].cid : null
  if (v.expect && root !== v.expect) why.push(`root ${root} != expected ${v.expect}`)
  for (const [k, want] of Object.entries(v.expectEntries ?? {})) {
    const hit = lines.find(l => l.path === k || l.path.endsWith('/' + k))
    if (!hit) why.push(`${k}: not printed, expected ${want}`)
    else if (hit.cid !== want) why.push(`${k}: ${hit.cid} != expected ${want}`)
  }
  if (v.expectAllSorted) {
    const got = lines.map(l => l.cid).sort()
    const want = [...v.expectAllSorted].sort()
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      const missing = want.filter(c => !got.includes(c))
      const extra = got.filter(c => !want.includes(c))
      why.push(`all CIDs differ (${got.length} printed, ${want.length} expected; missing ${missing.join(',') || '-'}; unexpected ${extra.join(',') || '-'})`)
    }
  }
  return why
}
