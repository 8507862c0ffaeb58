// `ipfs add` flags (kubo's spelling, as `cidrun add` takes them) -> the import parameters kubo
// would use. Profiles and the raw-leaves rules follow kubo core/commands/add.go and IPIP-499
// (see the UnixFS spec and kubo's add options).

const KiB = 1024

/** IPIP-499 parameter sets, by kubo profile name */
export const PROFILES = {
  'legacy-cid-v0': { cidVersion: 0, rawLeaves: false, chunker: 'size-262144', maxLinks: 174, hamtEstimation: 'links', hamtThreshold: 256 * KiB },
  'unixfs-v1-2025': { cidVersion: 1, rawLeaves: true, chunker: 'size-1048576', maxLinks: 1024, hamtEstimation: 'block', hamtThreshold: 256 * KiB }
}
PROFILES['unixfs-v0-2015'] = PROFILES['legacy-cid-v0']

// boxo chunker: largest size-N / rabin max
export const CHUNK_SIZE_LIMIT = 2 * 1024 * 1024 - 256

/** go-humanize style sizes: 262144, 256KiB, 1GiB, 1B, 10kB (SI = 1000) */
export function parseSize (s) {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(String(s))
  if (!m) throw new Error(`invalid size: ${s}`)
  const units = {
    '': 1, b: 1,
    k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
    ki: 2 ** 10, kib: 2 ** 10, mi: 2 ** 20, mib: 2 ** 20, gi: 2 ** 30, gib: 2 ** 30, ti: 2 ** 40, tib: 2 ** 40
  }
  const mult = units[m[2].toLowerCase()]
  if (mult === undefined) throw new Error(`invalid size unit: ${s}`)
  return Math.floor(Number(m[1]) * mult)
}

/** kubo's --chunker string -> {kind:'size', size} | {kind:'rabin', min, avg, max} | {kind:'buzhash'} */
export function parseChunker (s) {
  if (s === 'buzhash') return { kind: 'buzhash' }
  let m = /^size-([0-9]+)$/.exec(s)
  if (s === 'default' || s === '') return { kind: 'size', size: 262144 }
  if (m) {
    const size = Number(m[1])
    if (size <= 0 || size > CHUNK_SIZE_LIMIT) throw new Error(`chunker size out of range: ${s}`)
    return { kind: 'size', size }
  }
  if (s === 'rabin') s = 'rabin-262144'
  m = /^rabin-([0-9]+)$/.exec(s)
  if (m) { // boxo NewRabin(avg): min = avg/3, max = avg + avg/2 (integer division)
    const avg = Number(m[1])
    return { kind: 'rabin', min: Math.floor(avg / 3), avg, max: avg + Math.floor(avg / 2) }
  }
  m = /^rabin-([0-9]+)-([0-9]+)-([0-9]+)$/.exec(s)
  if (m) {
    const [min, avg, max] = m.slice(1).map(Number)
    if (!(min >= 16 && min < avg && avg < max && max <= CHUNK_SIZE_LIMIT)) throw new Error(`invalid rabin parameters: ${s}`)
    return { kind: 'rabin', min, avg, max }
  }
  throw new Error(`unrecognized chunker: ${s}`)
}

function parseBool (v, name) {
  if (v === undefined || v === 'true' || v === '1') return true
  if (v === 'false' || v === '0') return false
  throw new Error(`--${name}: not a boolean: ${v}`)
}

/**
 * Parse `add` arguments. Returns { paths, settings } where settings are the effective import
 * parameters: recursive, hidden, onlyHash, quiet, quieter, cidVersion, rawLeaves, chunker{},
 * trickle, maxLinks, hamtThreshold, hamtEstimation, plus the raw metadata flags (preserveMode,
 * preserveMtime, mode, mtime, mtimeNsecs) and `extra` (unknown --flags, for the caller to judge).
 * Extra flags the JS oracle understands but kubo only has as config: --hamt-estimation links|block|disabled.
 */
export function parseAddArgs (argv) {
  const set = {}
  const paths = []
  const extra = []
  const takesValue = new Set(['cid-version', 'chunker', 'max-file-links', 'profile', 'hamt-threshold',
    'hamt-estimation', 'mode', 'mtime', 'mtime-nsecs', 'dir-sizing'])
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--') { paths.push(...argv.slice(i + 1)); break }
    if (!a.startsWith('-') || a === '-') { paths.push(a); continue }
    if (/^-[a-zA-Z]+$/.test(a)) { // short flags, possibly combined: -rHnQ
      for (const c of a.slice(1)) {
        const long = { r: 'recursive', H: 'hidden', n: 'only-hash', Q: 'quieter', q: 'quiet', t: 'trickle' }[c]
        if (!long) throw new Error(`unknown flag -${c}`)
        set[long] = 'true'
      }
      continue
    }
    let [name, value] = a.replace(/^--?/, '').split(/=(.*)/s)
    if (takesValue.has(name) && value === undefined) {
      if (i + 1 >= argv.length) throw new Error(`--${name} needs a value`)
      value = argv[++i]
    }
    set[name] = value
  }

  const profileName = set.profile ?? 'legacy-cid-v0'
  const profile = PROFILES[profileName]
  if (!profile) throw new Error(`unknown profile: ${profileName}`)
  const s = {
    recursive: 'recursive' in set ? parseBool(set.recursive, 'recursive') : false,
    hidden: 'hidden' in set ? parseBool(set.hidden, 'hidden') : false,
    onlyHash: 'only-hash' in set ? parseBool(set['only-hash'], 'only-hash') : false,
    quiet: 'quiet' in set ? parseBool(set.quiet, 'quiet') : false,
    quieter: 'quieter' in set ? parseBool(set.quieter, 'quieter') : false,
    trickle: 'trickle' in set ? parseBool(set.trickle, 'trickle') : false,
    profile: profileName,
    preserveMode: 'preserve-mode' in set ? parseBool(set['preserve-mode'], 'preserve-mode') : false,
    preserveMtime: 'preserve-mtime' in set ? parseBool(set['preserve-mtime'], 'preserve-mtime') : false,
    mode: set.mode !== undefined ? parseInt(set.mode, 8) : undefined,
    mtime: set.mtime !== undefined ? Number(set.mtime) : undefined,
    mtimeNsecs: set['mtime-nsecs'] !== undefined ? Number(set['mtime-nsecs']) : undefined,
    dirSizing: set['dir-sizing'] ?? 'js',
    extra
  }
  s.cidVersion = set['cid-version'] !== undefined ? Number(set['cid-version']) : profile.cidVersion
  if (s.cidVersion !== 0 && s.cidVersion !== 1) throw new Error(`unknown CID version: ${set['cid-version']}`)
  s.metadata = s.preserveMode || s.preserveMtime || s.mode !== undefined || s.mtime !== undefined
  // raw leaves: the flag wins; else the profile's setting when a profile was named; else CIDv1 => raw.
  // Metadata flags turn the default off (and conflict with an explicit --raw-leaves in kubo).
  if ('raw-leaves' in set) s.rawLeaves = parseBool(set['raw-leaves'], 'raw-leaves')
  else if (s.metadata) s.rawLeaves = false
  else if (set.profile !== undefined) s.rawLeaves = profile.rawLeaves
  else s.rawLeaves = s.cidVersion > 0
  s.chunker = parseChunker(set.chunker ?? profile.chunker)
  s.maxLinks = set['max-file-links'] !== undefined ? Number(set['max-file-links']) : profile.maxLinks
  if (!(s.maxLinks >= 2)) throw new Error(`--max-file-links must be >= 2: ${set['max-file-links']}`)
  s.hamtThreshold = set['hamt-threshold'] !== undefined ? parseSize(set['hamt-threshold']) : profile.hamtThreshold
  s.hamtEstimation = set['hamt-estimation'] ?? profile.hamtEstimation
  if (!['links', 'block', 'disabled'].includes(s.hamtEstimation)) throw new Error(`unknown HAMT estimation: ${s.hamtEstimation}`)
  for (const k of Object.keys(set)) {
    const known = ['recursive', 'hidden', 'only-hash', 'quiet', 'quieter', 'trickle', 'profile', 'preserve-mode',
      'preserve-mtime', 'mode', 'mtime', 'mtime-nsecs', 'cid-version', 'raw-leaves', 'chunker', 'max-file-links',
      'hamt-threshold', 'hamt-estimation', 'dir-sizing']
    if (!known.includes(k)) extra.push(k)
  }
  return { paths, settings: s }
}
