// `npm start`: bring up a local swarm of daemons, show that the DHT finds
// the true closest peers, tear it all down. File share/fetch join this demo
// as the Content, Placement and Fetch work lands.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { ApiClient } from '../src/api/client.ts'
import { closestByXor } from '../src/peer/kad-distance.ts'
import { swarmDown, swarmStatus, swarmUp } from '../src/swarm/process-swarm.ts'
import { isProcessAlive } from '../src/utils/process.ts'

const PEERS = Number(process.env.SHOAL_DEMO_PEERS ?? 10)
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
} finally {
  const down = await swarmDown(dir)
  const left = swarm.peers.filter(p => isProcessAlive(p.pid)).length
  say(`swarm down: ${down.stopped} stopped cleanly, ${down.killed} killed, ${left} process(es) left`)
  await fs.rm(dir, { recursive: true, force: true })
}
