// A Helia node (js-libp2p: TCP, Noise, yamux, Identify, Ping; @helia/bitswap 1.2.0) for cidrun's
// libp2p interop tests and benchmarks. Listens and dials on 127.0.0.1 only.
//   node helia-peer.mjs serve --dir DIR [--profile v0|v1]
//       imports DIR with the JS importer, serves it over bitswap; prints one JSON line
//       {"peerId","multiaddrs":[...],"root","blocks"} when ready; exits 0 on SIGTERM/SIGINT.
//   node helia-peer.mjs fetch MULTIADDR ROOT DIR [--concurrency N]
//       dials MULTIADDR, fetches every block of ROOT over bitswap (each hash-checked), then
//       compares the exported tree with DIR byte for byte; prints one JSON line; exit 1 on failure.
//   node helia-peer.mjs fetch-routed ROUTER_URL ROOT DIR [--concurrency N]
//       the same, from the first bitswap provider of ROOT that the Delegated Routing V1 server at
//       ROUTER_URL names (asked with Helia's own routing client).
import fs from 'node:fs'
import path from 'node:path'
import { withBitswap } from '@helia/bitswap'
import { delegatedRoutingV1HttpApiClient } from '@helia/delegated-routing-v1-http-api-client'
import { withLibp2pLight } from '@helia/libp2p'
import * as dagPb from '@ipld/dag-pb'
import { identify } from '@libp2p/identify'
import { defaultLogger } from '@libp2p/logger'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryBlockstore } from 'blockstore-core'
import { createHeliaLight } from 'helia'
import { exporter, recursive } from 'ipfs-unixfs-exporter'
import { importer } from 'ipfs-unixfs-importer'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

// Current libp2p calls Promise.withResolvers (Node 22); Node 20 lacks it.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const args = process.argv.slice(2)
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt }
const mode = args[0]
if (!['serve', 'fetch', 'fetch-routed'].includes(mode) || args.includes('--help')) {
  console.log('node helia-peer.mjs serve --dir DIR [--profile v0|v1]\n' +
    'node helia-peer.mjs fetch MULTIADDR ROOT DIR [--concurrency N]\n' +
    'node helia-peer.mjs fetch-routed ROUTER_URL ROOT DIR [--concurrency N]')
  process.exit(args.includes('--help') ? 0 : 2)
}

const loopbackOnly = {
  denyDialMultiaddr: ma => !ma.toString().startsWith('/ip4/127.'),
  denyInboundConnection: () => false
}

async function startNode (blockstore, listen) {
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ blockstore }), {
    addresses: { listen: listen ? ['/ip4/127.0.0.1/tcp/0'] : [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: loopbackOnly,
    services: { identify: identify(), ping: ping() }
  }))
  await helia.start()
  return helia
}

async function readBlock (store, cid, options) {
  const r = store.get(cid, options)
  if (r && typeof r[Symbol.asyncIterator] === 'function') {
    const chunks = []
    for await (const c of r) chunks.push(c)
    return Buffer.concat(chunks)
  }
  return Buffer.from(await r)
}

// The multiaddr (with /p2p/ID) of the first provider of cid that the router says speaks bitswap
// over TCP, and how many provider records it gave.
async function routedProvider (routerUrl, cid) {
  const client = delegatedRoutingV1HttpApiClient({ url: routerUrl, cacheTTL: 0 })({ logger: defaultLogger() })
  await client.start()
  let records = 0
  let found = null
  try {
    for await (const rec of client.getProviders(cid, { signal: AbortSignal.timeout(10000) })) {
      records++
      if (found != null || !rec.Protocols.includes('transport-bitswap')) continue
      const tcp = rec.Addrs.find(a => a.toString().includes('/tcp/') && !a.toString().includes('/http'))
      // The client hands the peer ID as a libp2p-key CID; a /p2p/ component is its multihash.
      if (tcp != null) found = `${tcp.toString()}/p2p/${base58btc.baseEncode(rec.ID.multihash.bytes)}`
    }
  } finally {
    await client.stop()
  }
  if (found == null) throw new Error(`${routerUrl} named no bitswap provider of ${cid} (${records} records)`)
  return { addr: found, records }
}

const mhKey = cid => Buffer.from(cid.multihash.bytes).toString('base64')

async function verify (cid, bytes) {
  const d = await sha256.digest(bytes)
  if (cid.multihash.code !== sha256.code ||
      Buffer.compare(Buffer.from(d.digest), Buffer.from(cid.multihash.digest)) !== 0) {
    throw new Error(`block ${cid} does not match its hash`)
  }
}

if (mode === 'serve') {
  const dir = opt('--dir')
  const v1 = opt('--profile', 'v0') === 'v1'
  const blockstore = new MemoryBlockstore()
  let count = 0
  const counting = {
    put: async (cid, bytes) => { count++; return blockstore.put(cid, bytes) },
    get: (cid, o) => blockstore.get(cid, o),
    has: (cid, o) => blockstore.has(cid, o)
  }
  function * files (abs, rel) {
    const st = fs.statSync(abs)
    if (st.isDirectory()) {
      const names = fs.readdirSync(abs).sort()
      if (names.length === 0) yield { path: rel }
      for (const n of names) yield * files(path.join(abs, n), `${rel}/${n}`)
    } else {
      yield { path: rel, content: fs.createReadStream(abs) }
    }
  }
  // v1: the importer's own IPIP-499 profile (1 MiB raw leaves, 1024 links per node, CIDv1), so
  // that its roots equal `cidrun add --profile unixfs-v1-2025`'s.
  const opts = v1 ? { profile: 'unixfs-v1-2025' } : { cidVersion: 0, rawLeaves: false }
  let root = null
  for await (const e of importer(files(dir, path.basename(dir)), counting, opts)) root = e.cid
  const helia = await startNode(blockstore, true)
  const stop = async () => { await helia.stop(); process.exit(0) }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  console.log(JSON.stringify({
    peerId: helia.libp2p.peerId.toString(),
    multiaddrs: helia.libp2p.getMultiaddrs().map(m => m.toString()),
    root: root.toString(),
    blocks: count
  }))
} else {
  const [, target, rootText, dir] = args
  const concurrency = Number(opt('--concurrency', '256'))
  const root = CID.parse(rootText)
  const routed = mode === 'fetch-routed' ? await routedProvider(target, root) : null
  const addr = routed != null ? routed.addr : target
  const helia = await startNode(new MemoryBlockstore(), false)
  let failed = false
  try {
    const start = Date.now()
    const conn = await helia.libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(10000) })
    // Fetch every block, up to `concurrency` wants in flight, each verified here as well.
    const held = new Map()
    let blockBytes = 0
    const queue = [root]
    const seen = new Set([mhKey(root)])
    let active = 0
    await new Promise((resolve, reject) => {
      const pump = () => {
        if (queue.length === 0 && active === 0) return resolve()
        while (active < concurrency && queue.length > 0) {
          const cid = queue.shift()
          active++
          readBlock(helia.blockstore, cid, { signal: AbortSignal.timeout(60000) }).then(async bytes => {
            await verify(cid, bytes)
            held.set(mhKey(cid), bytes)
            blockBytes += bytes.length
            if (cid.code === dagPb.code) {
              for (const l of dagPb.decode(bytes).Links) {
                const k = mhKey(l.Hash)
                if (!seen.has(k)) { seen.add(k); queue.push(l.Hash) }
              }
            }
            active--
            pump()
          }, reject)
        }
      }
      pump()
    })
    const fetchSeconds = (Date.now() - start) / 1000
    const store = {
      async * get (cid) {
        const b = held.get(mhKey(cid))
        if (!b) throw new Error(`missing block ${cid}`)
        yield b
      }
    }
    let files = 0
    let bytes = 0
    for await (const item of recursive(root, store)) {
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
    console.log(JSON.stringify({
      root: root.toString(),
      ...(routed != null ? { router: target, providerRecords: routed.records } : {}),
      peer: conn.remotePeer.toString(),
      encryption: conn.encryption,
      multiplexer: conn.multiplexer,
      blocks: held.size,
      blockBytes,
      fetchSeconds,
      MBps: Math.round(blockBytes / 1e6 / fetchSeconds * 10) / 10,
      files,
      bytes
    }))
  } catch (e) {
    console.error(`helia fetch failed: ${e.stack ?? e}`)
    failed = true
  }
  await helia.stop()
  process.exit(failed ? 1 : 0)
}
