// kubo's basic-directory -> HAMT decision, computed here from the directory's final entries
// (boxo ipld/unixfs/io/directory.go): shard when estimate > threshold, where
//   links : sum over entries of len(name) + len(CID bytes)                (legacy / --cid-version 1)
//   block : exact size of the basic directory block: Data field + per link
//           1 + varint(len) + [1 + varint(len(CID)) + CID, 1 + varint(len(name)) + name, 1 + varint(Tsize)]
// Written independently of ipfs-unixfs-importer (which has its own copy of these formulas).

export function varintLen (n) {
  let v = BigInt(n); let len = 1
  while (v >= 128n) { v >>= 7n; len++ }
  return len
}

const utf8Len = s => Buffer.byteLength(s, 'utf8')

/** entries: [{name, cidBytes}] */
export function linksEstimate (entries) {
  return entries.reduce((a, e) => a + utf8Len(e.name) + e.cidBytes, 0)
}

/** size of one PBLink inside a PBNode (tag + length + body) */
export function linkSize (nameBytes, cidBytes, tsize) {
  const body = 1 + varintLen(cidBytes) + cidBytes + 1 + varintLen(nameBytes) + nameBytes + 1 + varintLen(tsize)
  return 1 + varintLen(body) + body
}

/**
 * entries: [{name, cidBytes, tsize}] where tsize may be a number or [min, max] when unknown.
 * dataSize: bytes of the PBNode Data field incl. its tag and length (4 for a plain directory: 0a 02 08 01).
 * Returns [low, high] bounds of the block estimate.
 */
export function blockEstimate (entries, dataSize = 4) {
  let lo = dataSize; let hi = dataSize
  for (const e of entries) {
    const [tmin, tmax] = Array.isArray(e.tsize) ? e.tsize : [e.tsize, e.tsize]
    lo += linkSize(utf8Len(e.name), e.cidBytes, tmin)
    hi += linkSize(utf8Len(e.name), e.cidBytes, tmax)
  }
  return [lo, hi]
}

/** 'hamt' | 'basic' | 'undecided' (when bounds straddle the threshold) */
export function decide (estimation, entries, threshold) {
  if (estimation === 'disabled' || threshold === 0) return 'basic'
  const [lo, hi] = estimation === 'links' ? [linksEstimate(entries), linksEstimate(entries)] : blockEstimate(entries)
  if (lo > threshold) return 'hamt'
  if (hi <= threshold) return 'basic'
  return 'undecided'
}
