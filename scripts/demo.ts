// `npm start`: bring up a local swarm of daemons, show that the DHT finds
// the true closest peers, share a file from one peer (every block placed on
// its 3 closest peers), stop that peer, fetch the file on another from the
// replicas and check it byte for byte, then tear it all down.
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { ApiClient } from '../src/api/client.ts'
import { closestByXor } from '../src/routing/kademlia/kad-distance.ts'
import { swarmDown, swarmStatus, swarmStopPeer, swarmUp } from '../src/swarm/process-swarm.ts'
import { isProcessAlive } from '../src/utils/process.ts'

const PEERS = Number(process.env.SHOAL_DEMO_PEERS ?? 20)
const FILE_MIB = Number(process.env.SHOAL_DEMO_FILE_MIB ?? 32)
const dir = path.resolve('.shoal-demo')
const say = (line: string): void => { process.stdout.write(line + '\n') }

await fs.rm(dir, { recursive: true, force: true })
say(`starting a swarm of ${PEERS} Shoal daemons on 127.0.0.1 in ${dir} ...`)
const swarm = await swarmUp({
  peers: PEERS,
  dir,
  onProgress: e => {
    if (process.stderr.isTTY === true) {
      process.stderr.write(`\r  ${e.name === 'swarm:peer-started' ? `started ${e.started}` : `routable ${e.routable}`}/${e.total}   `)
    }
  }
})
if (process.stderr.isTTY === true) process.stderr.write('\n')
try {
  say(`swarm routable in ${(swarm.routableMs / 1000).toFixed(1)} s (every routing table holds >= ${Math.min(PEERS - 1, 20)} peers)`)
  const status = await swarmStatus(dir)
  const sizes = status.peers.map(p => p.routingTableSize ?? 0)
  say(`routing tables: min ${Math.min(...sizes)}, max ${Math.max(...sizes)} peers; ${status.peers.filter(p => p.alive).length}/${PEERS} peers alive`)

  const all = swarm.peers.map(p => peerIdFromString(p.peerId))
  for (const index of [0, Math.floor(PEERS / 2), PEERS - 1]) {
    const cid = CID.createV1(raw.code, await sha256.digest(randomBytes(32)))
    const client = await ApiClient.fromRepo(swarm.peers[index].repo)
    const found = await client.closestPeers(cid.toString())
    const asker = swarm.peers[index].peerId
    const truth = closestByXor(cid.multihash.bytes, all.filter(p => p.toString() !== asker), 3).map(String)
    const top3 = found.peers.slice(0, 3)
    const match = top3.every((p, i) => p === truth[i])
    say(`peer-${index} looked up ${cid.toString().slice(0, 16)}...: ${found.hops} hop(s), ${found.ms.toFixed(0)} ms, ` +
      `3 closest ${match ? 'match' : 'DIFFER from'} the XOR truth (${top3.map(p => p.slice(-6)).join(', ')})`)
  }

  // share from peer-0, leave, fetch on the last peer from the replicas
  const file = path.join(dir, 'demo-file.bin')
  const bytes = randomBytes(FILE_MIB * 1024 * 1024)
  await fs.writeFile(file, bytes)
  const sharer = await ApiClient.fromRepo(swarm.peers[0].repo)
  const shared = await sharer.share({ path: file, replicas: 3 })
  say(`peer-0 shared ${FILE_MIB} MiB as ${shared.cid}: ${shared.blocks} blocks, each on its ${shared.replicas.target} closest peers: ` +
    `${shared.replicas.complete ? 'complete' : `only ${shared.replicas.min} copies for some`} ` +
    `(import ${shared.placement.importMs} ms, placement ${shared.placement.placeMs} ms, ${shared.placement.lookups} DHT lookup(s))`)
  const stat = await sharer.stat(shared.cid, 3)
  const perPeer = new Map<string, number>()
  for (const b of stat.blocks) for (const h of b.holders) if (h !== swarm.peers[0].peerId) perPeer.set(h, (perPeer.get(h) ?? 0) + 1)
  const name = (id: string): string => `peer-${swarm.peers.find(p => p.peerId === id)?.index ?? '?'}`
  say(`replicas on other peers: ${[...perPeer].sort((a, b) => b[1] - a[1]).map(([id, n]) => `${name(id)} ${n}`).join(', ')} blocks`)
  await swarmStopPeer(dir, 0)
  say('peer-0 (the sharer) stopped')
  const fetcher = swarm.peers[PEERS - 1]
  const out = path.join(dir, 'fetched.bin')
  const fetchClient = await ApiClient.fromRepo(fetcher.repo)
  const fetched = await fetchClient.fetch(shared.cid, { path: out, timeoutSeconds: 60 })
  const same = createHash('sha256').update(await fs.readFile(out)).digest('hex') === createHash('sha256').update(bytes).digest('hex')
  const receivedMiB = Object.values(fetched.peers).reduce((a, b) => a + b, 0) / 1024 / 1024
  say(`peer-${PEERS - 1} fetched it in ${fetched.seconds.toFixed(2)} s: ${receivedMiB.toFixed(1)} MiB received (${(receivedMiB / fetched.seconds).toFixed(1)} MiB/s, ` +
    `in parallel; layout ${fetched.timings.layoutMs} ms, first source ${fetched.timings.firstSourceMs} ms, first block after ${fetched.timings.firstBlockMs ?? '-'} ms, last after ${fetched.timings.lastBlockMs ?? '-'} ms) from ${Object.keys(fetched.peers).map(name).join(', ')}, ${fetched.local} block(s) it already held; bytes ${same ? 'identical' : 'DIFFERENT'}`)
  if (!same) process.exitCode = 1
} finally {
  const down = await swarmDown(dir)
  const left = swarm.peers.filter(p => isProcessAlive(p.pid)).length
  say(`swarm down: ${down.stopped} stopped cleanly, ${down.killed} killed, ${left} process(es) left`)
  await fs.rm(dir, { recursive: true, force: true })
}
