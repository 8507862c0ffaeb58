// Fetches a UnixFS DAG from a Trustless Gateway (cidrun serve) with the JS stack and checks it
// against the original tree on disk:
//   --mode helia  Helia's trustless-gateway block broker (@helia/trustless-gateway-client): one
//                 raw-block request per block, driven by ipfs-unixfs-exporter
//   --mode car    one CAR request (dag-scope=all), read with @ipld/car
// Every block is hash-checked with multiformats' sha256 before use; the export is then compared
// byte for byte with DIR. Prints one JSON line; exits 1 on any failure.
//   node js-fetch.mjs GATEWAY_URL ROOT_CID DIR [--mode helia|car]
import fs from 'node:fs'
import path from 'node:path'
import { fallbackRouter } from '@helia/fallback-router'
import { trustlessGatewayBlockBroker } from '@helia/trustless-gateway-client'
import { CarBlockIterator } from '@ipld/car'
import { defaultLogger } from '@libp2p/logger'
import { exporter, recursive } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const [gateway, rootText, dir] = process.argv.slice(2)
const mode = process.argv.includes('--mode') ? process.argv[process.argv.indexOf('--mode') + 1] : 'helia'
if (!gateway || !rootText || !dir || process.argv.includes('--help')) {
  console.log('node js-fetch.mjs GATEWAY_URL ROOT_CID DIR [--mode helia|car]')
  process.exit(gateway ? 0 : 2)
}
const root = CID.parse(rootText)

async function verify (cid, bytes) {
  const d = await sha256.digest(bytes)
  if (cid.multihash.code !== sha256.code ||
      Buffer.compare(Buffer.from(d.digest), Buffer.from(cid.multihash.digest)) !== 0) {
    throw new Error(`block ${cid} from ${gateway} does not match its hash`)
  }
}

let blocks = 0
let blockBytes = 0
let store
const start = Date.now()
if (mode === 'helia') {
  // The broker only fetches; verification is the caller's job (Helia passes validateFn too).
  const routing = fallbackRouter({ gateways: [gateway], shuffle: false })
  const broker = trustlessGatewayBlockBroker({ allowInsecure: true, allowLocal: true })({ routing, logger: defaultLogger() })
  store = {
    // The exporter reads blocks as async iterables of chunks (interface-blockstore 7).
    async * get (cid) {
      const bytes = await broker.retrieve(cid, { validateFn: b => verify(cid, b) })
      await verify(cid, bytes)
      blocks++
      blockBytes += bytes.length
      yield bytes
    }
  }
} else if (mode === 'car') {
  const res = await fetch(`${gateway}/ipfs/${root}?format=car&dag-scope=all`, {
    headers: { Accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=n' }
  })
  if (res.status !== 200) throw new Error(`CAR request: HTTP ${res.status}`)
  const ct = res.headers.get('content-type')
  if (!ct.startsWith('application/vnd.ipld.car') || !ct.includes('version=1')) throw new Error(`bad content type ${ct}`)
  const held = new Map()
  for await (const { cid, bytes } of await CarBlockIterator.fromIterable(res.body)) {
    await verify(cid, bytes)
    held.set(Buffer.from(cid.multihash.bytes).toString("base64"), bytes)
    blocks++
    blockBytes += bytes.length
  }
  // Completeness: the export below fails on any block the CAR lacked.
  store = {
    async * get (cid) {
      const b = held.get(Buffer.from(cid.multihash.bytes).toString("base64"))
      if (!b) throw new Error(`CAR lacks block ${cid}`)
      yield b
    }
  }
} else {
  throw new Error(`unknown mode ${mode}`)
}

let files = 0
let bytes = 0
for await (const item of recursive(root, store)) {
  // recursive() only lists (cid, path); exporter() gives the node's type and content reader.
  const entry = await exporter(item.cid, store)
  const rel = item.path.split('/').slice(1).join('/')
  const local = path.join(dir, rel)
  if (entry.type === 'directory') {
    if (!fs.statSync(local).isDirectory()) throw new Error(`${rel}: not a directory on disk`)
    continue
  }
  const chunks = []
  for await (const c of entry.content()) chunks.push(c)
  const got = Buffer.concat(chunks)
  if (Buffer.compare(got, fs.readFileSync(local)) !== 0) throw new Error(`${rel}: content differs`)
  files++
  bytes += got.length
}
const seconds = (Date.now() - start) / 1000
console.log(JSON.stringify({ mode, root: root.toString(), blocks, blockBytes, files, bytes, seconds }))
