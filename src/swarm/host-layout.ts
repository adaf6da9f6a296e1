/**
 * How `swarm up` lays a swarm out over processes when nobody says: how many
 * peers share one host process, and how many connections each of them may
 * keep, both from the open files a process may hold.
 */
import os from 'node:os'
import { CONNECTIONS_HIGH_WATER, CONNECTIONS_LOW_WATER, HOSTED_PEER_CONNECTIONS_SHARE, OPEN_FILES_PER_HOSTED_PEER, OWN_PROCESS_MAX_PEERS } from '../constants.ts'
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
