/**
 * The Chord overlay service: owns the ring state, the maintenance timers,
 * the protocol handler and the provider records, and implements `Overlay`
 * on top of them. The pieces: ring-state.ts (what this peer knows),
 * maintenance.ts (Zave's operations), lookup.ts (iterative lookups),
 * planner.ts (many keys), server.ts (answers), rpc.ts (questions).
 */
import type { AbortOptions, Logger, PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { multiaddr } from '@multiformats/multiaddr'
import type { ChordRouting, JoinOptions, LookupResult, OverlayChange, ResponsiblePlanner } from '../index.ts'
import type { ChordComponents, ChordInit, ChordLeave, ChordOverlay, ChordStats } from './index.ts'
import { AddressBook } from './address-book.ts'
import { ContactStore, contactsOf } from './contacts.ts'
import {
  CHORD_PROTOCOL, DEFAULT_CHECK_PREDECESSOR_INTERVAL_MS, DEFAULT_FIX_FINGERS_INTERVAL_MS, DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_MAINTENANCE_BACKOFF,
  DEFAULT_PROVIDER_REPLICAS, DEFAULT_PROVIDER_TTL_MS, DEFAULT_QUERY_TIMEOUT_MS, DEFAULT_REPROVIDE_INTERVAL_MS,
  DEFAULT_STABILIZE_INTERVAL_MS, DEFAULT_SUCCESSOR_LIST_LENGTH, GOODBYE_TIMEOUT_MS, LEAVE_TIMEOUT_MS,
  MAX_INBOUND_STREAMS, MAX_OUTBOUND_STREAMS, MAX_PEERS_PER_MESSAGE, MAX_SUCCESSOR_LIST_LENGTH
} from './constants.ts'
import { ChordNotRunningError, InvalidReplicasError } from './errors.ts'
import { findSuccessors, type LookupContext, type LookupOptions, type LookupOutcome } from './lookup.ts'
import { Maintenance } from './maintenance.ts'
import { MaintenanceTimers } from './maintenance-timers.ts'
import { ChordPlanner } from './planner.ts'
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
  /** Peers given to join(): the way back when every successor is lost. */
  private readonly bootstrap = new Set<string>()
  private readonly listeners = new Set<(change: OverlayChange) => void>()
  private readonly queryTimeoutMs: number
  private readonly lookupTimeoutMs: number
  private readonly providerReplicas: number
  private lifetime = new AbortController()
  private rpc: ChordRpc
  private maintenance: Maintenance
  private server: ChordServer
  private readonly timers: MaintenanceTimers
  private readonly contacts: ContactStore
  /** Successors saved by the last run, tried once at the first stabilize. */
  private restoring: string[] | undefined
  private started = false
  private leaving: Promise<void> | undefined
  private joining: Promise<void> | undefined
  /** The leave hook runs: planners still work (lookups go out; this peer answers none). */
  private handingOver = false
  private answered = 0

  constructor (components: ChordComponents, init: ChordInit = {}) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent(init.logPrefix ?? 'shoal:chord')
    this.successorListLength = checkCount('successorListLength', init.successorListLength ?? DEFAULT_SUCCESSOR_LIST_LENGTH, MAX_SUCCESSOR_LIST_LENGTH)
    this.queryTimeoutMs = init.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS
    this.lookupTimeoutMs = init.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS
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
    this.addresses = new AddressBook(peer => this.bootstrap.has(peer) || this.state.knownPeers().includes(peer))
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
    this.maintenance = this.createMaintenance()
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
      beforeStabilize: async options => { await this.findTheRing(options) },
      reprovide: async options => { await this.records.reprovide(options) },
      housekeeping: () => { this.providers.prune() },
      log: this.log
    })
  }

  /** A restarted peer first tries the successors it saved; a peer whose join found nobody yet tries again through its bootstrap peers. */
  private async findTheRing (options: AbortOptions): Promise<void> {
    const saved = this.restoring
    this.restoring = undefined
    if (saved != null && this.state.alone) await this.maintenance.restore(saved, options)
    if (this.state.alone && this.bootstrap.size > 0) await this.joinThrough([...this.bootstrap], options)
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
    await this.restoreContacts()
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
    if (this.restoring != null) this.timers.stabilizeNow()
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

  private async leaveRing (options: AbortOptions): Promise<void> {
    this.timers.stop()
    const signal = AbortSignal.any([this.lifetime.signal, ...(options.signal != null ? [options.signal] : [])])
    const successors = [...this.state.successors]
    const predecessor = this.state.predecessor
    const info: ChordLeave = { successors, predecessor }
    // the hook may plan with this overlay (placement hands replicas on)
    this.handingOver = true
    try {
      await this.init.onLeave?.(info, { signal })
    } catch (err) {
      this.log.error('the leave hook failed - %e', err)
    } finally {
      this.handingOver = false
    }
    const farewell = AbortSignal.any([this.lifetime.signal, AbortSignal.timeout(GOODBYE_TIMEOUT_MS)])
    await this.records.handOff(successors, { signal: farewell })
    await this.maintenance.goodbye(successors, predecessor, { signal: farewell })
    this.log('left the ring (successor %s, predecessor %s)', successors[0], predecessor)
    this.rpc.closeAll()
    await this.contacts.flush()
    this.state.reset()
  }

  // ---- contacts kept across restarts (contacts.ts) ----

  /** Learns the contacts an earlier run saved: its successors to try first, every one a way back. */
  private async restoreContacts (): Promise<void> {
    const saved = await this.contacts.load().catch(err => {
      this.log('could not read the saved Chord contacts: %s', (err as Error).message)
      return undefined
    })
    if (saved == null) return
    const all = [...saved.successors, ...(saved.predecessor != null ? [saved.predecessor] : []), ...saved.fingers]
    for (const peer of all) {
      this.directory.learn(peer)
      this.bootstrap.add(peer.id)
    }
    this.restoring = saved.successors.map(p => p.id)
    this.log('%d saved contacts, %d of them successors', this.bootstrap.size, this.restoring.length)
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

  /** A peer did not answer a query: it leaves the fingers (stabilize owns the successor list), and maintenance speeds up. */
  private failed (peer: string): void {
    this.state.forgetPeer(peer)
    this.timers.wake()
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

  // ---- Overlay: joining ----

  /**
   * Dials each address and checks with a ping that the peer speaks Chord
   * (`connected` counts those; `failed` the dials that failed and the peers
   * refused). A peer not on a ring yet (alone, or stranded) then joins
   * through them; one already on a ring keeps them as a way back.
   */
  async join (multiaddrs: string[], options: JoinOptions = {}): Promise<{ connected: number, failed: number }> {
    this.checkRunning()
    if (options.successors === true) return this.adoptSuccessors(multiaddrs, options)
    const reached: string[] = []
    let failed = 0
    await Promise.all(multiaddrs.map(async text => {
      try {
        const peer = await this.rpc.reach(text, this.state.self, options)
        this.bootstrap.add(peer)
        reached.push(peer)
      } catch (err) {
        if (options.signal?.aborted === true) throw err
        this.log('bootstrap peer %s: %s', text, (err as Error).message)
        failed++
      }
    }))
    if (reached.length > 0 && (this.state.stranded || this.state.alone)) {
      await this.joinThrough(reached, options, reached)
    }
    return { connected: reached.length, failed }
  }

  /**
   * The launcher's successor list for this peer (JoinOptions.successors):
   * every peer's addresses remembered, the first one reached (stabilize
   * talks to it, and this peer's notify makes it our successor's
   * predecessor), the list adopted as it is; the stabilize brought forward
   * checks it as it checks any.
   */
  private async adoptSuccessors (multiaddrs: string[], options: JoinOptions): Promise<{ connected: number, failed: number }> {
    const first = new Map<string, string>()
    const learn = (list: string[]): string[] => {
      const ids: string[] = []
      for (const text of list) {
        const addr = multiaddr(text)
        const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
        if (id == null || id === this.state.self) continue
        this.addresses.add(id, [addr])
        if (!first.has(id)) first.set(id, text)
        if (!ids.includes(id)) ids.push(id)
      }
      return ids
    }
    const ids = learn(multiaddrs)
    const fingers = learn(options.fingers ?? [])
    if (ids.length === 0) return { connected: 0, failed: multiaddrs.length }
    try {
      await this.rpc.reach(first.get(ids[0])!, this.state.self, options)
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      this.log('successor %s did not answer: %s', ids[0], (err as Error).message)
      return { connected: 0, failed: 1 }
    }
    this.bootstrap.add(ids[0])
    this.maintenance.seed(ids, fingers)
    this.timers.stabilizeNow()
    return { connected: 1, failed: 0 }
  }

  /** One join at a time: a second caller (the stabilize timer retrying) waits for the one under way. */
  private async joinThrough (seeds: string[], options: AbortOptions, live: string[] = []): Promise<void> {
    if (this.joining == null) {
      this.joining = this.maintenance.join(seeds, options, live)
        .then(joined => { if (joined) this.timers.stabilizeNow() })
        .catch(err => {
          if (options.signal?.aborted === true) throw err
          this.log('joining through %d peers failed: %s', seeds.length, (err as Error).message)
        })
        .finally(() => { this.joining = undefined })
    }
    await this.joining
  }

  // ---- Overlay: lookups ----

  async lookup (key: Uint8Array, k: number, options: AbortOptions = {}): Promise<LookupResult> {
    this.checkRunning()
    if (!Number.isInteger(k) || k < 1 || k > MAX_PEERS_PER_MESSAGE) throw new InvalidReplicasError(`k must be 1..${MAX_PEERS_PER_MESSAGE}, got ${k}`)
    const outcome = await this.findSuccessors(this.positions.ofKey(key), k, { signal: this.lookupSignal(options) })
    const responsible = [...new Set(outcome.window.peers)].slice(0, k)
    for (const peer of responsible) this.directory.publish(peer)
    return { responsible, path: outcome.path, hops: outcome.hops, messages: outcome.messages, ms: outcome.ms }
  }

  planner (): ResponsiblePlanner {
    if (!this.handingOver) this.checkRunning()
    return new ChordPlanner({
      ownWindow: () => this.state.ownWindow(),
      findWindow: async (key, count, options) => {
        const outcome = await this.findSuccessors(key, count, { signal: this.lookupSignal(options ?? {}) })
        for (const peer of outcome.window.peers) this.directory.publish(peer)
        return outcome.window
      },
      positionOfKey: key => this.positions.ofKey(key),
      positionOfPeer: peer => this.state.positionOf(peer)
    })
  }

  private async findSuccessors (key: bigint, count: number, options: LookupOptions): Promise<LookupOutcome> {
    return findSuccessors(this.lookupContext(), key, count, options)
  }

  private lookupContext (): LookupContext {
    return {
      state: this.state,
      rpc: this.rpc,
      learn: peer => { this.directory.learn(peer) },
      failed: peer => { this.failed(peer) },
      skip: peer => this.refused.has(peer)
    }
  }

  private lookupSignal (options: AbortOptions): AbortSignal {
    return AbortSignal.any([this.lifetime.signal, options.signal ?? AbortSignal.timeout(this.lookupTimeoutMs)])
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
      queryTimeoutMs: this.queryTimeoutMs,
      lifetime: () => this.lifetime.signal,
      onRefused: (peer, reason) => { this.refused.refuse(peer, reason, false) },
      log: this.log
    })
  }

  private createMaintenance (): Maintenance {
    return new Maintenance({
      state: this.state,
      rpc: this.rpc,
      lookup: async (key, count, options) => this.findSuccessors(key, count, options ?? {}),
      learn: peer => { this.directory.learn(peer) },
      failed: peer => { this.failed(peer) },
      fallbackSeeds: () => [...this.bootstrap],
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
