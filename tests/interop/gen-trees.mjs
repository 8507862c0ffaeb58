#!/usr/bin/env node
// gen-trees.mjs: generated input trees for comparing `cidrun add` with the JS oracle.
//
//   node gen-trees.mjs OUTDIR [NAME...]   creates the trees under OUTDIR and prints, per tree,
//                                         "<name>\t<path to add>\t<variant flags>|<variant flags>..."
//
// Each tree: { name, make(dir) -> path to add, variants: [flags...], dirSizing?, note? }.
// `variants` are kubo-style flag sets; the comparison runs `add -r -n <flags> PATH` for each.
// dirSizing 'complete' means the oracle builds directories bottom-up (see lib/oracle.mjs); used
// where plain JS is known to differ from kubo or cannot represent the input.
// Trees where JS and kubo are known to differ (many non-empty subdirectories around the HAMT
// threshold, mode/mtime) are not here: js-compare.mjs checks those against kubo's rules.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeChachaFile } from './lib/inputs.mjs'

const V1 = ['--cid-version', '1']
const P25 = ['--profile', 'unixfs-v1-2025']
/** the three parameter sets every tree is compared in */
export const BASIC = [[], V1, P25]

function mkdirp (p) { fs.mkdirSync(p, { recursive: true }); return p }
function file (p, content = '') { mkdirp(path.dirname(p)); fs.writeFileSync(p, content); return p }

/** `count` distinct names of exactly `len` bytes: prefix + zero-padded index */
export function fixedNames (count, len, prefix = 'n') {
  const digits = len - prefix.length
  if (digits < String(count - 1).length) throw new Error('names too short for count')
  return Array.from({ length: count }, (_, i) => prefix + String(i).padStart(digits, '0'))
}

/** a directory of files named `names`, each holding `content` */
function filesDir (p, names, content = 'x') {
  mkdirp(p)
  for (const n of names) fs.writeFileSync(path.join(p, n), content)
  return p
}

function chacha (p, size, seed = 'cidrun-gen-trees') { mkdirp(path.dirname(p)); writeChachaFile(p, seed, size); return p }

// HAMT threshold trees: basic-directory estimate exactly at 262144 (stays basic, kubo's ">") and
// one byte over (HAMT). Each file holds "x" (1 byte, so Tsize 1 with raw leaves).
//   links estimate = sum(len(name) + len(CID)): v0 CIDs 34 bytes, v1 36 bytes.
//   block estimate (unixfs-v1-2025) = 4 (Data field) + sum(1 + 1 + linkLen), linkLen =
//   (1+1+36) + (1+1+len(name)) + (1+1) = 42 + len(name) for short names and Tsize 1.
function thresholdDir (p, count, len, over) {
  const names = fixedNames(count, len)
  if (over) names[names.length - 1] = 'o' + names[names.length - 1] // one byte longer, still unique
  return filesDir(p, names)
}

export const trees = [
  { name: 'empty-file', make: d => file(path.join(d, 'empty')), variants: [...BASIC, ['--raw-leaves']] }, // (no --trickle: JS wraps the empty leaf, kubo's trickle root stays a bare empty File node)
  { name: 'empty-dir', make: d => mkdirp(path.join(d, 'emptydir')), variants: BASIC },
  {
    name: 'empty-things',
    note: 'empty files and empty directories at several depths',
    make: d => {
      const r = path.join(d, 'root')
      mkdirp(path.join(r, 'a/b/c'))
      mkdirp(path.join(r, 'only-empty-dir/inner'))
      file(path.join(r, 'empty-file'))
      file(path.join(r, 'a/empty-file'))
      file(path.join(r, 'a/b/non-empty'), 'content\n')
      mkdirp(path.join(r, 'z-empty'))
      return r
    },
    variants: [...BASIC, ['--raw-leaves']]
  },
  // chunk boundaries (default chunker 256 KiB)
  { name: 'file-262144', make: d => chacha(path.join(d, 'f262144'), 262144), variants: [...BASIC, ['--raw-leaves'], ['--trickle']] },
  { name: 'file-262145', make: d => chacha(path.join(d, 'f262145'), 262145), variants: [...BASIC, ['--raw-leaves'], ['--trickle'], ['--trickle', ...V1]] },
  // link-count boundary: 174 leaves fill one node, one more byte needs a second level
  { name: 'file-174x262144', make: d => chacha(path.join(d, 'f174'), 174 * 262144), variants: [...BASIC, ['--raw-leaves'], ['--trickle']] },
  { name: 'file-174x262144+1', make: d => chacha(path.join(d, 'f174p1'), 174 * 262144 + 1), variants: [...BASIC, ['--raw-leaves'], ['--trickle'], ['--trickle', ...V1]] },
  // unixfs-v1-2025 chunk boundary (1 MiB)
  { name: 'file-1MiB', make: d => chacha(path.join(d, 'f1m'), 1 << 20), variants: [...BASIC, [...P25, '--trickle']] },
  { name: 'file-1MiB+1', make: d => chacha(path.join(d, 'f1m1'), (1 << 20) + 1), variants: [...BASIC, [...P25, '--trickle']] },
  // small chunks: deep balanced trees (174*174*64+1 bytes = 3 levels) and deep trickle trees
  {
    name: 'file-small-chunks',
    make: d => chacha(path.join(d, 'fsmall'), 174 * 174 * 64 + 1),
    variants: [
      ['--chunker', 'size-64'], ['--chunker', 'size-64', ...V1], ['--chunker', 'size-64', '--raw-leaves'],
      ['--chunker', 'size-64', '--trickle'], ['--chunker', 'size-64', '--trickle', ...V1],
      ['--chunker', 'size-1000', '--max-file-links', '3'], ['--chunker', 'size-1000', '--max-file-links', '3', '--trickle'],
      ['--chunker', 'size-4096', '--max-file-links', '2', ...P25], ['--chunker', 'size-2096896']
    ]
  },
  {
    name: 'file-rabin',
    note: 'rabin: JS rabin-wasm vs boxo',
    // only the 14-byte t0040 rabin vectors (one chunk) show JS = kubo; for real inputs it is not
    // established (ipfs/interop#74 is from 2019), so a difference here is reported, not failed
    unverified: 'JS rabin-wasm is not established as kubo-equal for multi-chunk inputs (check against kubo itself)',
    make: d => chacha(path.join(d, 'frabin'), 3 * 1024 * 1024 + 17),
    variants: [['--chunker', 'rabin'], ['--chunker', 'rabin-8192'], ['--chunker', 'rabin-512-1024-2048'], ['--chunker', 'rabin-16-32-64', ...V1], ['--chunker', 'rabin-262144', ...P25]]
  },
  // HAMT threshold, files only (JS and kubo count files the same)
  { name: 'dir-links-v0-at-threshold', note: '4096 x (30 + 34) = 262144: basic', make: d => thresholdDir(path.join(d, 'dir'), 4096, 30, false), variants: [[]] },
  { name: 'dir-links-v0-over-threshold', note: '262145: HAMT', make: d => thresholdDir(path.join(d, 'dir'), 4096, 30, true), variants: [[]] },
  { name: 'dir-links-v1-at-threshold', note: '4096 x (28 + 36) = 262144: basic', make: d => thresholdDir(path.join(d, 'dir'), 4096, 28, false), variants: [V1, ['--raw-leaves=false', ...V1]] },
  { name: 'dir-links-v1-over-threshold', note: '262145: HAMT', make: d => thresholdDir(path.join(d, 'dir'), 4096, 28, true), variants: [V1, ['--raw-leaves=false', ...V1]] },
  { name: 'dir-block-v1-2025-at-threshold', note: '4 + 4369 x (44 + 16) = 262144: basic', make: d => thresholdDir(path.join(d, 'dir'), 4369, 16, false), variants: [P25] },
  { name: 'dir-block-v1-2025-over-threshold', note: '262145: HAMT', make: d => thresholdDir(path.join(d, 'dir'), 4369, 16, true), variants: [P25] },
  // many subdirectories where JS agrees with kubo: empty subdirectories count with their CID in both
  {
    name: 'dir-empty-subdirs-v0-at-threshold',
    note: '4096 empty dirs x (30 + 34) = 262144: basic',
    make: d => { const p = path.join(d, 'dir'); for (const n of fixedNames(4096, 30, 'd')) mkdirp(path.join(p, n)); return p },
    variants: [[]]
  },
  {
    name: 'dir-empty-subdirs-v0-over-threshold',
    note: '262145: HAMT',
    make: d => { const p = path.join(d, 'dir'); const ns = fixedNames(4096, 30, 'd'); ns[0] = 'o' + ns[0]; for (const n of ns) mkdirp(path.join(p, n)); return p },
    variants: [[]]
  },
  {
    name: 'dir-subdirs-under-threshold',
    note: '2000 non-empty subdirs x 60-char names: far below the threshold by every estimate (JS and kubo agree: basic)',
    make: d => { const p = path.join(d, 'dir'); for (const n of fixedNames(2000, 60, 's')) file(path.join(p, n, 'f'), 'x'); return p },
    variants: BASIC
  },
  {
    name: 'dir-hamt-two-levels',
    note: '12000 files: a HAMT with sub-shards, and a sharded directory inside a basic one',
    make: d => { const r = path.join(d, 'root'); filesDir(path.join(r, 'big'), fixedNames(12000, 12, 'file-')); file(path.join(r, 'small'), 's\n'); return r },
    variants: [...BASIC, ['--hamt-threshold', '1B']]
  },
  {
    name: 'names',
    note: 'unicode (NFC and NFD, 4-byte UTF-8 vs U+FFxx sort order), 255-byte names, spaces, a directory name ending in a backslash (oracle builds bottom-up: the importer splits paths on "/" not after "\\")',
    dirSizing: 'complete',
    make: d => {
      const r = path.join(d, 'names')
      const names = ['ünïcödé', '日本語のファイル', '😀 emoji', 'ｱ halfwidth', 'e\u0301-nfd', '\u00e9-nfc', 'Ω', 'z', 'A', '_', '-', '~tilde',
        'a'.repeat(255), '日'.repeat(85), 'é'.repeat(127) + 'x', ' leading space', 'trailing space ', 'two  spaces', 'tab\tname',
        'back\\slash', 'quote"s', "apostrophe's", 'semi;colon', 'star*', 'question?', '#hash', '%41percent']
      for (const n of names) file(path.join(r, n), `${n}\n`)
      file(path.join(r, 'dir with spaces', 'file in dir'), 'in dir\n')
      file(path.join(r, 'd'.repeat(255), 'x'.repeat(255)), 'deep\n')
      file(path.join(r, '日本', '😀', 'ü'), 'nested unicode\n')
      file(path.join(r, 'ends-with-backslash\\', 'inner'), 'backslash dir\n')
      return r
    },
    variants: [...BASIC, ['--raw-leaves']]
  },
  {
    name: 'symlinks',
    make: d => {
      const r = path.join(d, 'links')
      file(path.join(r, 'target.txt'), 'target\n')
      file(path.join(r, 'sub', 'inner.txt'), 'inner\n')
      fs.symlinkSync('target.txt', path.join(r, 'relative'))
      fs.symlinkSync('../links/sub/inner.txt', path.join(r, 'relative-up'))
      fs.symlinkSync('/etc/passwd', path.join(r, 'absolute'))
      fs.symlinkSync('/nonexistent/dangling/target', path.join(r, 'dangling-absolute'))
      fs.symlinkSync('does/not/exist', path.join(r, 'dangling'))
      fs.symlinkSync('sub', path.join(r, 'to-dir'))
      fs.symlinkSync('loop', path.join(r, 'loop'))
      fs.symlinkSync('日本語 target', path.join(r, 'unicode target'))
      fs.symlinkSync('t'.repeat(1000), path.join(r, 'long-target'))
      fs.symlinkSync('../../../../outside', path.join(r, 'sub', 'escaping'))
      fs.symlinkSync('.hidden-target', path.join(r, 'to-hidden'))
      return r
    },
    variants: [...BASIC, ['--raw-leaves']]
  },
  { name: 'symlink-alone', note: 'the added path itself is a symlink (stored, not followed)', make: d => { file(path.join(d, 't'), 'x\n'); fs.symlinkSync('t', path.join(d, 'alone')); return path.join(d, 'alone') }, variants: BASIC },
  {
    name: 'dotfiles',
    make: d => {
      const r = path.join(d, 'dots')
      file(path.join(r, '.hidden'), 'hidden\n')
      file(path.join(r, '.hiddendir', 'file'), 'in hidden dir\n')
      file(path.join(r, '..double'), 'double dot\n')
      file(path.join(r, 'visible'), 'visible\n')
      file(path.join(r, 'dir', '.inner'), 'inner hidden\n')
      file(path.join(r, 'dir', 'shown'), 'shown\n')
      mkdirp(path.join(r, 'only-hidden'))
      file(path.join(r, 'only-hidden', '.x'), 'x\n')
      fs.symlinkSync('visible', path.join(r, '.hidden-link'))
      return r
    },
    variants: [[], ['-H'], ['-H', ...V1], ['--hidden', ...P25], V1]
  }
]

export function makeTree (t, outDir) {
  const d = mkdirp(path.join(outDir, t.name))
  return t.make(d)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [out, ...names] = process.argv.slice(2)
  if (!out) { console.error('usage: gen-trees.mjs OUTDIR [NAME...]'); process.exit(2) }
  for (const t of trees) {
    if (names.length && !names.includes(t.name)) continue
    const p = makeTree(t, path.resolve(out))
    console.log([t.name, p, t.variants.map(v => v.join(' ')).join('|')].join('\t'))
  }
}
