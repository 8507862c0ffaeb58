// The UnixFS Data message (the UnixFS spec's Data message) written by hand, as kubo (boxo, gogo
// protobuf, proto2) writes it: fields in number order, only the ones that are set; mtime is
// {Seconds int64 varint = 1, FractionalNanoseconds fixed32 = 2}. Used to state exactly which bytes
// kubo writes for a node with given mode/mtime, independent of ipfs-unixfs (which omits 0644/0755).
// Also a raw field lister, to print what a block holds when it differs.

export const TYPE = { raw: 0, directory: 1, file: 2, metadata: 3, symlink: 4, hamt: 5 }

function varint (n) {
  // unsigned LEB128 of a BigInt; negative int64 as two's complement (10 bytes)
  let v = BigInt(n)
  if (v < 0n) v += 1n << 64n
  const out = []
  do {
    let b = Number(v & 0x7fn)
    v >>= 7n
    if (v > 0n) b |= 0x80
    out.push(b)
  } while (v > 0n)
  return out
}

function key (field, wire) { return varint((field << 3) | wire) }

function bytesField (field, bytes) { return [...key(field, 2), ...varint(bytes.length), ...bytes] }

/**
 * fields: { type, data?, filesize?, blocksizes?, hashType?, fanout?, mode?, mtime?: {secs, nsecs?} }
 * (undefined = not written). Returns Uint8Array.
 */
export function encodeData (f) {
  const out = [...key(1, 0), ...varint(f.type)]
  if (f.data !== undefined) out.push(...bytesField(2, f.data))
  if (f.filesize !== undefined) out.push(...key(3, 0), ...varint(f.filesize))
  for (const b of f.blocksizes ?? []) out.push(...key(4, 0), ...varint(b))
  if (f.hashType !== undefined) out.push(...key(5, 0), ...varint(f.hashType))
  if (f.fanout !== undefined) out.push(...key(6, 0), ...varint(f.fanout))
  if (f.mode !== undefined) out.push(...key(7, 0), ...varint(f.mode))
  if (f.mtime !== undefined) {
    const t = [...key(1, 0), ...varint(f.mtime.secs)]
    if (f.mtime.nsecs !== undefined) {
      const n = Number(f.mtime.nsecs)
      t.push(...key(2, 5), n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff)
    }
    out.push(...bytesField(8, t))
  }
  return Uint8Array.from(out)
}

function readVarint (buf, pos) {
  let v = 0n; let shift = 0n
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint')
    const b = buf[pos++]
    v |= BigInt(b & 0x7f) << shift
    if (!(b & 0x80)) return [v, pos]
    shift += 7n
    if (shift > 63n) throw new Error('varint too long')
  }
}

/** Decode a Data message into its fields (as kubo would read them), keeping presence. */
export function decodeData (buf) {
  const f = { blocksizes: [] }
  let pos = 0
  while (pos < buf.length) {
    let k; [k, pos] = readVarint(buf, pos)
    const field = Number(k >> 3n); const wire = Number(k & 7n)
    if (wire === 0) {
      let v; [v, pos] = readVarint(buf, pos)
      if (field === 1) f.type = Number(v)
      else if (field === 3) f.filesize = v
      else if (field === 4) f.blocksizes.push(v)
      else if (field === 5) f.hashType = v
      else if (field === 6) f.fanout = v
      else if (field === 7) f.mode = Number(v)
      else f[`unknown${field}`] = v
    } else if (wire === 2) {
      let len; [len, pos] = readVarint(buf, pos)
      const body = buf.subarray(pos, pos + Number(len)); pos += Number(len)
      if (field === 2) f.data = body
      else if (field === 8) {
        const t = {}
        let p = 0
        while (p < body.length) {
          let tk; [tk, p] = readVarint(body, p)
          if (tk === 8n) { let s; [s, p] = readVarint(body, p); t.secs = s >= (1n << 63n) ? s - (1n << 64n) : s } else if (tk === 21n) { t.nsecs = (body[p] | (body[p + 1] << 8) | (body[p + 2] << 16) | (body[p + 3] << 24)) >>> 0; p += 4 } else throw new Error(`unexpected UnixTime field key ${tk}`)
        }
        f.mtime = t
      } else f[`unknown${field}`] = body
    } else throw new Error(`unexpected wire type ${wire} for field ${field}`)
  }
  if (f.blocksizes.length === 0) delete f.blocksizes
  return f
}

/** short human form of decoded fields */
export function showData (f) {
  const parts = [`type=${Object.keys(TYPE).find(k => TYPE[k] === f.type) ?? f.type}`]
  if (f.data !== undefined) parts.push(`data=${f.data.length}B`)
  if (f.filesize !== undefined) parts.push(`filesize=${f.filesize}`)
  if (f.blocksizes) parts.push(`blocksizes=${f.blocksizes.length}`)
  if (f.hashType !== undefined) parts.push(`hashType=0x${f.hashType.toString(16)}`)
  if (f.fanout !== undefined) parts.push(`fanout=${f.fanout}`)
  parts.push(f.mode !== undefined ? `mode=0${f.mode.toString(8)}` : 'mode=-')
  parts.push(f.mtime !== undefined ? `mtime=${f.mtime.secs}${f.mtime.nsecs !== undefined ? '.' + String(f.mtime.nsecs).padStart(9, '0') : ''}` : 'mtime=-')
  return parts.join(' ')
}
