/**
 * Shoal's public library API: peers, repos, local swarms, the API client,
 * and the named errors. The CLI (src/cli) is built on exactly these.
 */
export { ShoalPeer, type ShoalPeerInit, type PeerStatus, type ConnectedPeer } from './peer/peer.ts'
export { Repo, type InitResult } from './peer/repo.ts'
export { resolveRepoPath } from './peer/repo-path.ts'
export { defaultConfig, validateConfig, type ShoalConfig } from './peer/config.ts'
export { closestByXor, compareDistance, kadIdOfKey, kadIdOfPeer } from './peer/kad-distance.ts'
export type { ClosestPeersResult } from './peer/closest-peers.ts'
export { createTestSwarm, type TestSwarm, type TestSwarmOptions } from './swarm/test-swarm.ts'
export { swarmUp, swarmStatus, swarmDown, readSwarmFile, type SwarmFile, type SwarmPeerInfo } from './swarm/process-swarm.ts'
export { ApiClient } from './api/client.ts'
export * from './errors.ts'
