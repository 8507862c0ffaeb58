// The JS stack doing what `cidrun pull` does, so that bench/pull.sh can time a whole JS pull
// beside ours: fetch every block of a DAG from a Trustless Gateway, hash-check each one, and
// store it as a file of its own under STORE (named by the CID's multihash in base64url, as a
// flat block store would), then check the DAG is complete.
//   --mode helia  Helia's trustless-gateway block broker (@helia/trustless-gateway-client):
//                 one raw-block request per block; the DAG is walked with --concurrency
//                 (default 32) blocks in flight, as Helia's own DAG walkers do
//   --mode car    one CAR request (dag-scope=all) read with @ipld/car, each block written as it
//                 arrives; completeness is checked by walking the links of what was stored. The
//                 request goes through node:http, not fetch(): on this machine undici's web
//                 streams receive a 512 MiB body ~2.5x slower, and the JS figure should be the
//                 best the JS stack can do
// Prints one JSON line {mode, blocks, bytes, seconds}; exits 1 on any failure.
//   node js-pull.mjs GATEWAY_URL ROOT_CID STORE [--mode helia|car] [--concurrency N]
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import path from 'node:path'
import { fallbackRouter } from '@helia/fallback-router'
import { trustlessGatewayBlockBroker } from '@helia/trustless-gateway-client'
import { CarBlockIterator } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import { defaultLogger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const args = process.argv.slice(2)
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt }
const [gateway, rootText, storeDir] = args
if (!gateway || !rootText || !storeDir || args.includes('--help')) {
  console.log('node js-pull.mjs GATEWAY_URL ROOT_CID STORE [--mode helia|car] [--concurrency N]')
  process.exit(gateway ? 0 : 2)
}
const mode = opt('--mode', 'helia')
const concurrency = Number(opt('--concurrency', '32'))
const root = CID.parse(rootText)
const RAW = 0x55

async function verify (cid, bytes) {
  const d = await sha256.digest(bytes)
  if (cid.multihash.code !== sha256.code ||
      Buffer.compare(Buffer.from(d.digest), Buffer.from(cid.multihash.digest)) !== 0) {
    throw new Error(`block ${cid} from ${gateway} does not match its hash`)
  }
}

const blockPath = cid => path.join(storeDir, Buffer.from(cid.multihash.bytes).toString('base64url'))
let blocks = 0
let bytes = 0
async function store (cid, data) {
  await fs.promises.writeFile(blockPath(cid), data)
  blocks++
  bytes += data.length
}
const links = (cid, data) => cid.code === RAW ? [] : dagPb.decode(data).Links.map(l => l.Hash)

fs.mkdirSync(storeDir, { recursive: true })
const start = Date.now()
if (mode === 'helia') {
  const routing = fallbackRouter({ gateways: [gateway], shuffle: false })
  const broker = trustlessGatewayBlockBroker({ allowInsecure: true, allowLocal: true })({ routing, logger: defaultLogger() })
  // A bounded pool walking the DAG: each finished block queues its children.
  const queue = [root]
  const seen = new Set([root.toString()])
  let active = 0
  await new Promise((resolve, reject) => {
    const pump = () => {
      if (queue.length === 0 && active === 0) return resolve()
      while (active < concurrency && queue.length > 0) {
        const cid = queue.shift()
        active++
        broker.retrieve(cid, { validateFn: b => verify(cid, b) })
          .then(async data => {
            await verify(cid, data)
            await store(cid, data)
            for (const l of links(cid, data)) {
              if (!seen.has(l.toString())) { seen.add(l.toString()); queue.push(l) }
            }
            active--
            pump()
          })
          .catch(reject)
      }
    }
    pump()
  })
} else if (mode === 'car') {
  const url = new URL(`/ipfs/${root}?format=car&dag-scope=all`, gateway)
  const res = await new Promise((resolve, reject) => {
    (url.protocol === 'https:' ? https : http).get(url, {
      headers: { Accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=n' }
    }, resolve).on('error', reject)
  })
  if (res.statusCode !== 200) throw new Error(`CAR request: HTTP ${res.statusCode}`)
  for await (const { cid, bytes: data } of await CarBlockIterator.fromIterable(res)) {
    await verify(cid, data)
    await store(cid, data)
  }
  // Completeness: every block linked from the root must now be in the store.
  const todo = [root]
  while (todo.length > 0) {
    const cid = todo.pop()
    let data
    try {
      data = await fs.promises.readFile(blockPath(cid))
    } catch {
      throw new Error(`the CAR lacks block ${cid}`)
    }
    todo.push(...links(cid, data))
  }
} else {
  throw new Error(`unknown mode ${mode}`)
}
const seconds = (Date.now() - start) / 1000
console.log(JSON.stringify({ mode, root: root.toString(), blocks, bytes, seconds }))
