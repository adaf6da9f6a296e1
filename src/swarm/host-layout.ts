/**
 * How `swarm up` lays a swarm out over processes when nobody says: how many
 * peers share one host process, and how many connections each of them may
 * keep, both from the open files a process may hold; and the cap on them.
 */
import os from 'node:os'
import { CONNECTIONS_HIGH_WATER, CONNECTIONS_LOW_WATER, HOSTED_PEER_CONNECTIONS_SHARE, MAX_CONNECTIONS, OPEN_FILES_PER_HOSTED_PEER, OWN_PROCESS_MAX_PEERS } from '../constants.ts'
import { openFileLimit } from '../utils/process.ts'

/**
 * Default layout: one process per peer for small swarms, else about one
 * host per core, with no more peers in one host than its open-file limit
 * leaves room for (OPEN_FILES_PER_HOSTED_PEER each).
 */
export function defaultPeersPerProcess (peers: number, fileLimit = openFileLimit()): number {
  if (peers <= OWN_PROCESS_MAX_PEERS) return 1
  const perCore = Math.ceil(peers / Math.max(2, os.availableParallelism()))
  const room = fileLimit == null ? perCore : Math.max(1, Math.floor(fileLimit / OPEN_FILES_PER_HOSTED_PEER))
  return Math.min(perCore, room)
}

/**
 * The connection watermarks of a peer in a host of `perProcess` peers: its
 * share of the host's open files (HOSTED_PEER_CONNECTIONS_SHARE), never
 * above a lone daemon's. A fixed 64 / 48 held a 1,000-peer Chord ring of
 * r = 20 in hosts of 100 at its high watermark, closing connections it
 * then dialled again, where those hosts have room for the defaults.
 */
export function hostedWatermarks (perProcess: number, fileLimit = openFileLimit()): { highWater: number, lowWater: number } {
  const perPeer = (fileLimit ?? perProcess * OPEN_FILES_PER_HOSTED_PEER) / perProcess
  const highWater = Math.max(16, Math.min(CONNECTIONS_HIGH_WATER, Math.floor(perPeer * HOSTED_PEER_CONNECTIONS_SHARE)))
  return { highWater, lowWater: Math.min(CONNECTIONS_LOW_WATER, Math.floor(highWater * 3 / 4)) }
}

/**
 * The connection cap (`connections.maxConnections`) of a peer in a local
 * swarm of `peers`: past every peer of the swarm, twice over (two peers
 * dialling each other at once may hold two connections). Every connection
 * inside the swarm is allow-listed, so libp2p's cap can close none of
 * them; past it, libp2p's pruner still reads every connected peer's
 * peer-store record at each new connection. One peer of 1,000 asking
 * every block's holders of a 256 MiB file held 530 connections, and that
 * reading was a fifth of its host's CPU. The trimmer
 * (connection-trimmer.ts) is what closes idle ones.
 */
export function swarmMaxConnections (peers: number): number {
  return Math.max(MAX_CONNECTIONS, 2 * peers)
}
