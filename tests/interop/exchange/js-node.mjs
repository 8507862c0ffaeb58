// A JS IPFS peer for cidrun's exchange interop tests: content imported by the JS reference
// importer (ipfs-unixfs-importer), served as an IPFS Trustless Gateway (raw blocks, CAR with
// @ipld/car) and as the subset of kubo's RPC API that cidrun uses (block/get, dag/export,
// dag/import with @ipld/car's reader and a hash check of every block).
//   node js-node.mjs [--dir DIR] [--profile v0|v1] [--corrupt]
// Listens on 127.0.0.1, an ephemeral port; prints one JSON line {"url","root","blocks"} when
// ready; logs to stderr; exits 0 on SIGTERM/SIGINT.
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { CarBlockIterator, CarWriter } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const args = process.argv.slice(2)
const opt = name => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined }
if (args.includes('--help')) {
  console.log('node js-node.mjs [--dir DIR] [--profile v0|v1] [--corrupt]')
  process.exit(0)
}
const corrupt = args.includes('--corrupt')

const blocks = new Map() // base64 multihash -> { cid, bytes }
const key = cid => Buffer.from(cid.multihash.bytes).toString('base64')
const store = {
  async put (cid, bytes) { blocks.set(key(cid), { cid, bytes }); return cid },
  async * get (cid) { const b = blocks.get(key(cid)); if (b) yield b.bytes },
  async has (cid) { return blocks.has(key(cid)) }
}

async function verified (cid, bytes) {
  if (cid.multihash.code !== sha256.code) throw new Error(`unsupported hash in ${cid}`)
  const d = await sha256.digest(bytes)
  if (Buffer.compare(Buffer.from(d.digest), Buffer.from(cid.multihash.digest)) !== 0) {
    throw new Error(`block ${cid} does not match its hash`)
  }
}

let root = null
const dir = opt('--dir')
if (dir) {
  const v1 = opt('--profile') === 'v1'
  function * files (abs, rel) {
    const st = fs.statSync(abs)
    if (st.isDirectory()) {
      const names = fs.readdirSync(abs)
      if (names.length === 0) yield { path: rel }
      for (const n of names) yield * files(path.join(abs, n), `${rel}/${n}`)
    } else {
      yield { path: rel, content: fs.createReadStream(abs) }
    }
  }
  const opts = v1
    ? { cidVersion: 1, rawLeaves: true, chunker: fixedSize({ chunkSize: 1048576 }), maxChildrenPerNode: 1024 }
    : { cidVersion: 0, rawLeaves: false }
  for await (const e of importer(files(dir, path.basename(dir)), store, opts)) root = e.cid
}

const block = cid => {
  if (cid.multihash.code === 0) return cid.multihash.digest
  const b = blocks.get(key(cid))
  if (!b) return null
  if (!corrupt) return b.bytes
  const c = Uint8Array.from(b.bytes)
  c[c.length - 1] ^= 1
  return c
}

// DFS pre-order, duplicates once, identity blocks left out: what kubo's dag export writes.
function * dfs (cid, seen = new Set()) {
  if (cid.multihash.code === 0 || seen.has(key(cid))) return
  seen.add(key(cid))
  const bytes = block(cid)
  if (!bytes) throw new Error(`missing block ${cid}`)
  yield { cid, bytes }
  if (cid.code === dagPb.code) {
    for (const l of dagPb.decode(blocks.get(key(cid)).bytes).Links) yield * dfs(l.Hash, seen)
  }
}

async function sendCar (res, cid, type) {
  const { writer, out } = CarWriter.create([cid])
  res.writeHead(200, { 'Content-Type': type })
  const pump = (async () => { for await (const chunk of out) res.write(chunk) })()
  try {
    for (const b of dfs(cid)) await writer.put(b)
  } catch (err) {
    console.error(`car of ${cid}: ${err.message}`)
    res.destroy()
    return
  }
  await writer.close()
  await pump
  res.end()
}

const rpcError = (res, msg, status = 500) => {
  res.writeHead(status, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify({ Message: msg, Code: 0, Type: 'error' }) + '\n')
}

async function handle (req, res) {
  const url = new URL(req.url, 'http://127.0.0.1')
  console.error(JSON.stringify({ method: req.method, url: req.url, accept: req.headers.accept }))
  if (url.pathname.startsWith('/api/v0/')) {
    if (req.method !== 'POST') return rpcError(res, 'method not allowed', 405)
    const cmd = url.pathname.slice(8)
    if (cmd === 'block/get' || cmd === 'dag/export') {
      let cid
      try { cid = CID.parse(url.searchParams.get('arg')) } catch { return rpcError(res, 'invalid cid', 400) }
      const b = block(cid)
      if (!b) return rpcError(res, `block was not found locally (offline): ${cid}`)
      if (cmd === 'block/get') { res.writeHead(200, { 'Content-Type': 'text/plain' }); return res.end(b) }
      return sendCar(res, cid, 'application/vnd.ipld.car')
    }
    if (cmd === 'dag/import') {
      const form = await new Request('http://x/', { method: 'POST', headers: req.headers, body: req, duplex: 'half' }).formData()
      const lines = []
      for (const [, file] of form) {
        const it = await CarBlockIterator.fromBytes(new Uint8Array(await file.arrayBuffer()))
        for await (const { cid, bytes } of it) {
          try { await verified(cid, bytes) } catch (err) { return rpcError(res, err.message) }
          await store.put(cid, bytes)
        }
        for (const r of await it.getRoots()) lines.push({ Root: { Cid: { '/': r.toString() }, PinErrorMsg: '' } })
      }
      res.writeHead(200, { 'Content-Type': 'application/json' })
      return res.end(lines.map(l => JSON.stringify(l) + '\n').join(''))
    }
    return rpcError(res, `unknown command ${cmd}`, 404)
  }
  // Lets a test see what arrived through dag/import: every CID held, as a JSON list.
  if (url.pathname === '/blocks') {
    res.writeHead(200, { 'Content-Type': 'application/json' })
    return res.end(JSON.stringify([...blocks.values()].map(b => b.cid.toString())))
  }
  if (!url.pathname.startsWith('/ipfs/')) { res.writeHead(404); return res.end() }
  let cid
  try { cid = CID.parse(url.pathname.slice(6).split('/')[0]) } catch { res.writeHead(400); return res.end('bad cid\n') }
  const accept = req.headers.accept ?? ''
  const format = url.searchParams.get('format') ?? (accept.includes('application/vnd.ipld.car') ? 'car' : accept.includes('application/vnd.ipld.raw') ? 'raw' : null)
  const b = block(cid)
  if (!b) { res.writeHead(404); return res.end('not found\n') }
  if (format === 'raw') {
    res.writeHead(200, { 'Content-Type': 'application/vnd.ipld.raw', 'Content-Length': b.length })
    return res.end(req.method === 'HEAD' ? undefined : b)
  }
  if (format === 'car') return sendCar(res, cid, 'application/vnd.ipld.car; version=1; order=dfs; dups=n')
  res.writeHead(400); res.end('trustless gateway: ask for raw or car\n')
}

const server = http.createServer((req, res) => {
  handle(req, res).catch(err => { console.error(err); if (!res.headersSent) rpcError(res, err.message); else res.destroy() })
})
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address()
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}`, root: root?.toString() ?? null, blocks: blocks.size }))
})
const stop = () => server.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
