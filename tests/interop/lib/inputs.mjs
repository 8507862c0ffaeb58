// Creates the inputs of the kubo vectors (kubo-vectors.json "recipe") on disk.
//
// Recipe kinds:
//   text          one file holding `text` (UTF-8)
//   chacha20      one file of `size` bytes of kubo's deterministic test data
//                 (kubo test/cli/testutils: ChaCha20 keystream, key = SHA-256(seed),
//                 12-byte zero nonce, block counter 0)
//   go-math-rand  one file of `size` bytes from Go's math/rand (v1) seeded with `seed`
//                 (kubo sharness `random-data`); needs a Go toolchain, see goAvailable()
//   seq-files     directory: files `${prefix}${i}` holding "i\n" for i = 1..count (kubo t0260)
//   kubo-names    directory: kubo's createDeterministicFiles(): `count` files holding "x" whose
//                 names are read from a 1 MiB chacha20 stream (same seed rule as above), one byte
//                 per character, mapped with byte % 39 onto testutils.AlphabetEasy; every name is
//                 `nameLen` long except the last one (`lastNameLen`)
//   tree          directory of explicit entries {path, text | dir | symlink, mode?, mtime?};
//                 recipe.root {mode?, mtime?} applies to the top directory
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const LIB = path.dirname(fileURLToPath(import.meta.url))

// kubo test/cli/testutils AlphabetEasy (39 runes; note the second '0').
export const ALPHABET_EASY = 'abcdefghijklmnopqrstuvwxyz01234567890-_'

/** A ChaCha20 keystream generator for kubo's deterministic test data. */
export function chachaStream (seed) {
  const key = crypto.createHash('sha256').update(String(seed), 'utf8').digest()
  // OpenSSL's chacha20 takes a 16-byte IV: 32-bit little-endian block counter, then the 96-bit
  // nonce. All zero = Go's chacha20.NewUnauthenticatedCipher(key, make([]byte, 12)).
  const cipher = crypto.createCipheriv('chacha20', key, Buffer.alloc(16))
  return {
    /** the next n keystream bytes */
    next (n) { return cipher.update(Buffer.alloc(n)) }
  }
}

/** Write `size` bytes of chacha20(seed) data to file p (streaming, 4 MiB at a time). */
export function writeChachaFile (p, seed, size) {
  const s = chachaStream(seed)
  const fd = fs.openSync(p, 'w')
  try {
    for (let left = size; left > 0;) {
      const n = Math.min(left, 4 << 20)
      fs.writeSync(fd, s.next(n))
      left -= n
    }
  } finally { fs.closeSync(fd) }
}

let goChecked
/** true when a `go` command runs here */
export function goAvailable () {
  if (goChecked === undefined) goChecked = spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0
  return goChecked
}

/** Write Go math/rand (v1) bytes to p by running lib/go-math-rand.go. */
export function writeGoMathRandFile (p, seed, size) {
  const out = fs.openSync(p, 'w')
  try {
    const r = spawnSync('go', ['run', path.join(LIB, 'go-math-rand.go'), String(seed), String(size)],
      { stdio: ['ignore', out, 'inherit'], env: { ...process.env, GO111MODULE: 'off' } })
    if (r.status !== 0) throw new Error(`go run go-math-rand.go failed (status ${r.status})`)
  } finally { fs.closeSync(out) }
  if (fs.statSync(p).size !== size) throw new Error('go-math-rand.go wrote a wrong size')
}

/** the names kubo's createDeterministicFiles() creates (in creation order; may repeat) */
export function kuboNames ({ count, nameLen, lastNameLen, seed }) {
  const bytes = chachaStream(seed).next(1 << 20)
  const names = []
  let off = 0
  for (let i = 0; i < count; i++) {
    const len = i === count - 1 ? lastNameLen : nameLen
    if (off + len > bytes.length) throw new Error('kubo-names: 1 MiB name stream exhausted')
    let name = ''
    for (let j = 0; j < len; j++) name += ALPHABET_EASY[bytes[off + j] % ALPHABET_EASY.length]
    off += len
    names.push(name)
  }
  return names
}

function setTimesAndMode (p, { mode, mtime }, isSymlink) {
  if (mode !== undefined && !isSymlink) fs.chmodSync(p, parseInt(mode, 8))
  if (mtime !== undefined) {
    if (isSymlink) fs.lutimesSync(p, mtime, mtime)
    else fs.utimesSync(p, mtime, mtime)
  }
}

function makeTree (root, recipe) {
  fs.mkdirSync(root)
  for (const e of recipe.entries) {
    const p = path.join(root, e.path)
    fs.mkdirSync(path.dirname(p), { recursive: true })
    if (e.dir) fs.mkdirSync(p, { recursive: true })
    else if (e.symlink !== undefined) fs.symlinkSync(e.symlink, p)
    else fs.writeFileSync(p, e.text ?? '')
  }
  // Times last and children before parents: creating or touching an entry changes its
  // directory's mtime, so a parent's stamp must be written after everything inside it.
  const byDepth = [...recipe.entries].sort((a, b) => b.path.split('/').length - a.path.split('/').length)
  for (const e of byDepth) setTimesAndMode(path.join(root, e.path), e, e.symlink !== undefined)
  if (recipe.root) setTimesAndMode(root, recipe.root, false)
}

/**
 * Create the input of `recipe` as `${dir}/input` (dir is created if needed).
 * Returns the path of `input`.
 */
export function materialize (recipe, dir) {
  fs.mkdirSync(dir, { recursive: true })
  const root = path.join(dir, 'input')
  switch (recipe.kind) {
    case 'text':
      fs.writeFileSync(root, recipe.text)
      break
    case 'chacha20':
      writeChachaFile(root, recipe.seed, recipe.size)
      break
    case 'go-math-rand':
      writeGoMathRandFile(root, recipe.seed, recipe.size)
      break
    case 'seq-files':
      fs.mkdirSync(root)
      for (let i = 1; i <= recipe.count; i++) fs.writeFileSync(path.join(root, `${recipe.prefix}${i}`), `${i}\n`)
      break
    case 'kubo-names':
      fs.mkdirSync(root)
      for (const name of kuboNames(recipe)) fs.writeFileSync(path.join(root, name), 'x')
      break
    case 'tree':
      makeTree(root, recipe)
      break
    default:
      throw new Error(`unknown recipe kind: ${recipe.kind}`)
  }
  return root
}

/** what a recipe needs that may be missing here: null, or a reason to skip */
export function missingRequirement (vector) {
  if ((vector.requires ?? []).includes('go') && !goAvailable()) {
    return 'needs a Go toolchain (Go math/rand v1 stream), `go` not found'
  }
  return null
}
