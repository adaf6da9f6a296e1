/**
 * Shoal's public library API: peers and the daemon that serves their API,
 * repos, the overlay interface, local swarms, the API client, and the named
 * errors. The CLI (src/cli) is built on exactly these.
 */
export { ShoalPeer, type ShoalPeerInit, type PeerStatus, type ConnectedPeer } from './peer/peer.ts'
export type { PeerShareOptions, PeerShareResult, ShareProgressEvent, ShareSource } from './peer/share.ts'
export { Repo, type InitResult } from './peer/repo.ts'
export { resolveRepoPath } from './peer/repo-path.ts'
export { defaultConfig, validateConfig, type ShoalConfig } from './peer/config.ts'
export type {
  Overlay, OverlayName, OverlayChange, LookupHop, LookupResult, ResponsiblePlanner, PlanResult, RoutingSnapshot
} from './routing/index.ts'
export { closestByXor, compareDistance, kadIdOfKey, kadIdOfPeer } from './routing/kademlia/kad-distance.ts'
export { createTestSwarm, type TestSwarm, type TestSwarmOptions } from './swarm/test-swarm.ts'
export { swarmUp, swarmStatus, swarmDown, readSwarmFile, type SwarmFile, type SwarmPeerInfo } from './swarm/process-swarm.ts'
export { ShoalDaemon, type ShoalDaemonInit } from './api/daemon.ts'
export type { ClosestPeersResult, StatusResponse } from './api/server.ts'
export { ApiClient } from './api/client.ts'
export * from './errors.ts'
