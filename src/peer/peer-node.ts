/**
 * A peer's libp2p node, built from its repo's config (the overlay, listen
 * and announce addresses, connection limits, private addresses) and
 * started. A start that fails releases what did start and reports the
 * start's own error; a listen address already taken is AddressInUseError,
 * which names the addresses.
 */
import type { ComponentLogger } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import type { Registry } from 'prom-client'
import { AddressInUseError } from '../errors.ts'
import { createShoalNode, type ShoalNode, type ShoalNodeInit } from '../routing/libp2p.ts'
import type { Repo } from './repo.ts'

export interface PeerNodeInit {
  /** Listen multiaddrs (the init's, else the config's). */
  listen: string[]
  datastore: Datastore
  metricsRegistry?: Registry
  processMetrics?: boolean
  plannedJoin?: boolean
  /** A Chord peer leaving the ring hands its replicas on through this. */
  onLeave: ShoalNodeInit['onLeave']
  logger: ComponentLogger
}

export async function startPeerNode (repo: Repo, init: PeerNodeInit): Promise<ShoalNode> {
  const config = repo.config
  const node = await createShoalNode({
    overlay: config.overlay,
    successorListLength: config.chord.successorListLength,
    onLeave: init.onLeave,
    privateKey: repo.privateKey,
    datastore: init.datastore,
    listen: init.listen,
    announce: config.announce,
    kBucketSize: config.dht.kBucketSize,
    maxConnections: config.connections.maxConnections,
    allow: config.connections.allow,
    trim: { highWater: config.connections.highWater, lowWater: config.connections.lowWater, gracePeriodMs: config.connections.gracePeriodSeconds * 1000 },
    privateAddresses: config.connections.privateAddresses,
    metricsRegistry: init.metricsRegistry,
    processMetrics: init.processMetrics,
    plannedJoin: init.plannedJoin,
    logger: init.logger
  })
  try {
    await node.start()
  } catch (err) {
    // the start error is the one to report; stopping only releases what did start
    await Promise.resolve(node.stop()).catch(() => {})
    if (isAddressInUse(err)) {
      throw new AddressInUseError(`listen address ${init.listen.join(', ')} is already in use`)
    }
    throw err
  }
  return node
}

function isAddressInUse (err: unknown): boolean {
  const e = err as { code?: string, message?: string, errors?: unknown[] } | undefined
  if (e?.code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(e?.message ?? '')) return true
  return Array.isArray(e?.errors) && e.errors.some(isAddressInUse)
}
