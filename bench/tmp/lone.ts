import { createTestSwarm } from '../../src/swarm/test-swarm.ts'
import { CID } from 'multiformats/cid'
const swarm = await createTestSwarm(1)
const p = swarm.peers[0]
let t = performance.now()
const r = await p.closestPeers(new Uint8Array(34).fill(7), { signal: AbortSignal.timeout(20000) }).catch(e => e.message)
console.log('lookup', r, (performance.now() - t).toFixed(0))
t = performance.now()
const cid = CID.parse('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
try { for await (const e of p.libp2p.services.dht.provide(cid, { signal: AbortSignal.timeout(20000) })) console.log(e.name) } catch (e) { console.log('provide err', (e as Error).message) }
console.log('provide', (performance.now() - t).toFixed(0))
await swarm.destroy()
