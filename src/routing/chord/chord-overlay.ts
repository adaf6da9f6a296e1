/**
 * The Chord overlay service: owns the ring state, the maintenance timers,
 * the protocol handler and the provider records, and implements `Overlay`
 * on top of them. The pieces: ring-state.ts (what this peer knows),
 * maintenance.ts (Zave's operations), join.ts (onto the ring, and back),
 * leave.ts (off it),
 * lookup.ts (iterative lookups), key-lookups.ts and planner.ts (the
 * Overlay's lookups of one key and of many), server.ts (answers), rpc.ts
 * (questions).
 */
import type { AbortOptions, Logger, PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { ChordRouting, JoinOptions, LookupResult, OverlayChange, ResponsiblePlanner } from '../index.ts'
import type { ChordComponents, ChordInit, ChordOverlay, ChordStats } from './index.ts'
import { AddressBook } from './address-book.ts'
import { ContactStore, contactsOf } from './contacts.ts'
import {
  CHORD_PROTOCOL, DEFAULT_CHECK_PREDECESSOR_INTERVAL_MS, DEFAULT_FIX_FINGERS_INTERVAL_MS, DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_MAINTENANCE_BACKOFF,
  DEFAULT_PROVIDER_REPLICAS, DEFAULT_PROVIDER_TTL_MS, DEFAULT_QUERY_TIMEOUT_MS, DEFAULT_REPROVIDE_INTERVAL_MS,
  DEFAULT_STABILIZE_INTERVAL_MS, DEFAULT_SUCCESSOR_LIST_LENGTH, LEAVE_TIMEOUT_MS,
  MAX_INBOUND_STREAMS, MAX_OUTBOUND_STREAMS, MAX_PEERS_PER_MESSAGE, MAX_SUCCESSOR_LIST_LENGTH
} from './constants.ts'
import { ChordNotRunningError } from './errors.ts'
import { RingJoin, type JoinResult } from './join.ts'
import { KeyLookups } from './key-lookups.ts'
import { leaveRing } from './leave.ts'
import { Maintenance } from './maintenance.ts'
import { MaintenanceTimers } from './maintenance-timers.ts'
import { PeerDirectory } from './peer-directory.ts'
import { Positions } from './positions.ts'
import { ProviderRecords } from './provider-records.ts'
import { ProviderStore } from './provider-store.ts'
import { Refusals } from './refusals.ts'
import { RingState } from './ring-state.ts'
import { ChordRpc } from './rpc.ts'
import { ChordServer } from './server.ts'
import { InvalidInputError } from '../../errors.ts'

export class ChordOverlayService implements ChordOverlay {
  readonly name = 'chord' as const
  readonly protocol = CHORD_PROTOCOL
  readonly successorListLength: number
  readonly [Symbol.toStringTag] = 'shoal:chord'

  private readonly components: ChordComponents
  private readonly init: ChordInit
  private readonly log: Logger
  private readonly positions = new Positions()
  private readonly state: RingState
  private readonly addresses: AddressBook
  private readonly directory: PeerDirectory
  private readonly providers: ProviderStore
  private readonly records: ProviderRecords
  private readonly refused: Refusals
  private readonly listeners = new Set<(change: OverlayChange) => void>()
  private readonly providerReplicas: number
  private lifetime = new AbortController()
  private rpc: ChordRpc
  private maintenance: Maintenance
  private server: ChordServer
  private readonly timers: MaintenanceTimers
  private readonly contacts: ContactStore
  private readonly joins: RingJoin
  private readonly lookups: KeyLookups
  private started = false
  private leaving: Promise<void> | undefined
  /** The leave hook runs: planners still work (lookups go out; this peer answers none). */
  private handingOver = false
  private answered = 0

  constructor (components: ChordComponents, init: ChordInit = {}) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent(init.logPrefix ?? 'shoal:chord')
    this.successorListLength = checkCount('successorListLength', init.successorListLength ?? DEFAULT_SUCCESSOR_LIST_LENGTH, MAX_SUCCESSOR_LIST_LENGTH)
    this.providerReplicas = checkCount('providerReplicas', init.providerReplicas ?? DEFAULT_PROVIDER_REPLICAS, MAX_PEERS_PER_MESSAGE)
    this.providers = new ProviderStore(init.providerTtlMs ?? DEFAULT_PROVIDER_TTL_MS)
    this.refused = new Refusals({
      self: components.peerId.toString(),
      drop: peer => {
        this.state.dropSuccessor(peer)
        this.state.forgetPeer(peer)
      },
      onPeerRefused: init.onPeerRefused,
      log: this.log
    })
    this.state = new RingState(components.peerId.toString(), this.positions, this.successorListLength, change => {
      this.changed(change)
      // a ring that changes is watched at the base pace again
      this.timers.changed()
    }, peer => !this.refused.has(peer))
    this.addresses = new AddressBook(peer => this.joins.isWayBack(peer) || this.state.knownPeers().includes(peer))
    this.directory = new PeerDirectory({
      self: this.state.self,
      addresses: this.addresses,
      refused: peer => this.refused.has(peer),
      addressManager: components.addressManager,
      peerStore: components.peerStore,
      log: this.log
    })
    this.contacts = new ContactStore(components.datastore, () => contactsOf(this.state, peer => this.directory.info(peer)), this.log)
    this.rpc = this.createRpc()
    this.lookups = new KeyLookups({
      state: this.state,
      rpc: this.rpc,
      positions: this.positions,
      directory: this.directory,
      failed: (peer, err) => this.failed(peer, err),
      skip: peer => this.refused.has(peer),
      lifetime: () => this.lifetime.signal,
      lookupTimeoutMs: init.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS
    })
    this.maintenance = this.createMaintenance()
    this.joins = new RingJoin({
      state: this.state,
      rpc: this.rpc,
      addresses: this.addresses,
      maintenance: this.maintenance,
      contacts: this.contacts,
      learn: peer => { this.directory.learn(peer) },
      stabilizeNow: () => { this.timers.stabilizeNow() },
      log: this.log
    })
    this.server = this.createServer()
    this.records = this.createRecords()
    const backoff = init.maintenanceBackoff ?? DEFAULT_MAINTENANCE_BACKOFF
    if (!Number.isFinite(backoff) || backoff < 1) throw new InvalidInputError(`chord maintenanceBackoff must be a number >= 1, got ${backoff}`)
    this.timers = new MaintenanceTimers({
      stabilizeIntervalMs: init.stabilizeIntervalMs ?? DEFAULT_STABILIZE_INTERVAL_MS,
      fixFingersIntervalMs: init.fixFingersIntervalMs ?? DEFAULT_FIX_FINGERS_INTERVAL_MS,
      checkPredecessorIntervalMs: init.checkPredecessorIntervalMs ?? DEFAULT_CHECK_PREDECESSOR_INTERVAL_MS,
      reprovideIntervalMs: init.reprovideIntervalMs ?? DEFAULT_REPROVIDE_INTERVAL_MS,
      backoff,
      state: this.state,
      maintenance: this.maintenance,
      rpc: this.rpc,
      beforeStabilize: async options => { await this.joins.findTheRing(options) },
      reprovide: async options => { await this.records.reprovide(options) },
      housekeeping: () => { this.providers.prune() },
      log: this.log
    })
  }

  // ---- lifecycle ----

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    if (this.started) return
    this.lifetime = new AbortController()
    this.leaving = undefined
    this.state.reset()
    await this.joins.restoreContacts()
    await this.components.registrar.handle(CHORD_PROTOCOL, this.server.handle, {
      maxInboundStreams: MAX_INBOUND_STREAMS,
      maxOutboundStreams: MAX_OUTBOUND_STREAMS
    })
    this.components.events.addEventListener('peer:identify', this.refused.onIdentify)
    this.components.events.addEventListener('peer:disconnect', this.onDisconnect)
    this.timers.start(this.lifetime.signal)
    this.started = true
  }

  /** A restarted peer goes back to its saved successors at once. */
  afterStart (): void {
    if (this.joins.restorePending) this.timers.stabilizeNow()
  }

  async beforeStop (): Promise<void> {
    if (!this.started || this.init.leaveOnStop === false) return
    try {
      await this.leave({ signal: AbortSignal.timeout(LEAVE_TIMEOUT_MS) })
    } catch (err) {
      this.log.error('leaving the ring failed - %e', err)
    }
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.timers.stop()
    this.lifetime.abort(new ChordNotRunningError('the Chord overlay stopped'))
    this.components.events.removeEventListener('peer:identify', this.refused.onIdentify)
    this.components.events.removeEventListener('peer:disconnect', this.onDisconnect)
    this.refused.clearPending()
    await this.components.registrar.unhandle(CHORD_PROTOCOL)
    this.rpc.closeAll()
    await this.contacts.flush()
    this.state.reset()
    this.providers.clear()
  }

  async leave (options: AbortOptions = {}): Promise<void> {
    if (!this.started) return
    this.leaving ??= this.leaveRing(options)
    await this.leaving
  }

  /** The steps of leave.ts, then this peer forgets the ring. */
  private async leaveRing (options: AbortOptions): Promise<void> {
    this.timers.stop()
    await leaveRing({
      state: this.state,
      onLeave: this.init.onLeave,
      handingOver: running => { this.handingOver = running },
      records: this.records,
      rpc: this.rpc,
      peerMessage: peer => this.directory.peerMessage(peer),
      lifetime: this.lifetime.signal,
      log: this.log
    }, options)
    this.rpc.closeAll()
    await this.contacts.flush()
    this.state.reset()
  }

  // ---- maintenance pace ----

  /** Stops (an experiment control: no stabilization after failures) or restarts stabilize, fix-fingers, check-predecessor and reprovide. */
  pauseMaintenance (paused: boolean): void {
    this.timers.setPaused(paused)
    this.log('maintenance %s', paused ? 'paused' : 'resumed')
  }

  private readonly onDisconnect = (event: CustomEvent<PeerId>): void => {
    this.timers.disconnected(event.detail.toString())
  }

  /** A query to a peer failed: a dead one (suspects.ts) leaves the fingers and the predecessor, and maintenance speeds up. */
  private failed (peer: string, err: unknown): boolean {
    const dead = this.rpc.suspects.failed(peer, err)
    if (dead) {
      this.state.forgetPeer(peer)
      this.timers.wake()
    } else this.log('%s is a suspect: %s', peer, (err as Error)?.message)
    return dead
  }

  // ---- Overlay: identifiers and order ----

  idOfPeer (peerId: string): Uint8Array {
    return this.positions.idOfPeer(peerId)
  }

  idOfKey (key: Uint8Array): Uint8Array {
    return this.positions.idOfKey(key)
  }

  order (key: Uint8Array, peers: Iterable<string>): string[] {
    return this.positions.order(key, peers)
  }

  rank (key: Uint8Array, peerId: string, among: Iterable<string>): number {
    return this.positions.rank(key, peerId, among)
  }

  knownPeers (): string[] {
    return this.state.knownPeers()
  }

  routing (): ChordRouting {
    return {
      overlay: 'chord',
      self: this.state.self,
      predecessor: this.state.predecessor,
      successors: [...this.state.successors],
      fingers: this.state.fingers.distinct()
    }
  }

  onChange (listener: (change: OverlayChange) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  stats (): ChordStats {
    return { sent: this.rpc.sent, answered: this.answered }
  }

  // ---- Overlay: joining (join.ts) ----

  async join (multiaddrs: string[], options: JoinOptions = {}): Promise<JoinResult> {
    this.checkRunning()
    return this.joins.join(multiaddrs, options)
  }

  // ---- Overlay: lookups (key-lookups.ts) ----

  async lookup (key: Uint8Array, k: number, options: AbortOptions = {}): Promise<LookupResult> {
    this.checkRunning()
    return this.lookups.lookup(key, k, options)
  }

  planner (): ResponsiblePlanner {
    if (!this.handingOver) this.checkRunning()
    return this.lookups.planner()
  }

  // ---- Overlay: provider records (provider-records.ts) ----

  async provide (root: CID, options: AbortOptions = {}): Promise<void> {
    this.checkRunning()
    await this.records.provide(root, options)
  }

  findProviders (root: CID, options: AbortOptions = {}): AsyncIterable<string> {
    this.checkRunning()
    return this.records.findProviders(root, options)
  }

  // ---- peers ----

  private changed (change: OverlayChange): void {
    this.contacts.changed()
    for (const peer of change.added) this.directory.publish(peer)
    for (const listener of this.listeners) {
      try {
        listener(change)
      } catch (err) {
        this.log.error('an onChange listener failed - %e', err)
      }
    }
  }

  private checkRunning (): void {
    if (!this.started) throw new ChordNotRunningError('the Chord overlay is not started')
    if (this.leaving != null) throw new ChordNotRunningError('this peer has left the Chord ring')
  }

  // ---- wiring of the parts ----

  private createRpc (): ChordRpc {
    return new ChordRpc({
      connectionManager: this.components.connectionManager,
      addresses: this.addresses,
      self: () => this.directory.peerMessage(this.state.self),
      queryTimeoutMs: this.init.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
      lifetime: () => this.lifetime.signal,
      onRefused: (peer, reason) => { this.refused.refuse(peer, reason, false) },
      log: this.log
    })
  }

  private createMaintenance (): Maintenance {
    return new Maintenance({
      state: this.state,
      rpc: this.rpc,
      lookup: async (key, count, options) => this.lookups.findSuccessors(key, count, options ?? {}),
      learn: peer => { this.directory.learn(peer) },
      failed: (peer, err) => this.failed(peer, err),
      fallbackSeeds: () => this.joins.waysBack(),
      peerMessage: peer => this.directory.peerMessage(peer),
      log: this.log
    })
  }

  private createRecords (): ProviderRecords {
    return new ProviderRecords({
      store: this.providers,
      rpc: this.rpc,
      replicas: this.providerReplicas,
      self: this.state.self,
      lookup: async (key, k, options) => this.lookup(key, k, options),
      ownAddrs: () => this.directory.ownAddrs(),
      peerMessage: peer => this.directory.peerMessage(peer),
      infoMessage: peer => this.directory.infoMessage(peer),
      found: provider => {
        this.directory.learn(provider)
        this.directory.publish(provider.id)
      },
      rank: (key, peer, among) => this.rank(key, peer, among),
      knownPeers: () => this.state.knownPeers(),
      log: this.log
    })
  }

  private createServer (): ChordServer {
    return new ChordServer({
      state: this.state,
      maintenance: this.maintenance,
      providers: this.providers,
      peerMessage: peer => this.directory.peerMessage(peer),
      learn: peer => { this.directory.learn(peer) },
      acceptsRecord: (key, replicas) => this.records.accepts(key, replicas),
      closed: () => this.leaving != null,
      log: this.log,
      onRequest: (operation, from) => {
        this.answered++
        if (operation === 'ping') this.timers.pinged(from)
      }
    })
  }
}

function checkCount (field: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new InvalidInputError(`chord ${field} must be an integer 1..${max}, got ${value}`)
  return value
}
