/**
 * The Chord overlay service: owns the ring state, the maintenance timers,
 * the protocol handler and the provider records, and implements `Overlay`
 * on top of them. The pieces: ring-state.ts (what this peer knows),
 * maintenance.ts (Zave's operations), lookup.ts (iterative lookups),
 * planner.ts (many keys), server.ts (answers), rpc.ts (questions).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { AbortOptions, Logger, PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { ChordRouting, LookupResult, OverlayChange, ResponsiblePlanner } from '../index.ts'
import type { ChordComponents, ChordInit, ChordLeave, ChordOverlay, ChordStats } from './index.ts'
import { AddressBook } from './address-book.ts'
import {
  CHORD_PROTOCOL, DEFAULT_CHECK_PREDECESSOR_INTERVAL_MS, DEFAULT_FIX_FINGERS_INTERVAL_MS, DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_MAINTENANCE_BACKOFF,
  DEFAULT_PROVIDER_REPLICAS, DEFAULT_PROVIDER_TTL_MS, DEFAULT_QUERY_TIMEOUT_MS, DEFAULT_REPROVIDE_INTERVAL_MS,
  DEFAULT_STABILIZE_INTERVAL_MS, DEFAULT_SUCCESSOR_LIST_LENGTH, GOODBYE_TIMEOUT_MS, LEAVE_TIMEOUT_MS, MAX_ADDRS_PER_PEER,
  MAX_INBOUND_STREAMS, MAX_OUTBOUND_STREAMS, MAX_PEERS_PER_MESSAGE, MAX_REFUSED_PEERS, MAX_SUCCESSOR_LIST_LENGTH, SELF_ADDRESSES_MS
} from './constants.ts'
import { ChordNotRunningError, InvalidReplicasError } from './errors.ts'
import { findSuccessors, type LookupContext, type LookupOptions, type LookupOutcome } from './lookup.ts'
import { Maintenance } from './maintenance.ts'
import { peerIdBytes, withPeerId, type PeerInfo, type PeerMessage } from './messages.ts'
import { PeriodicTask } from './periodic.ts'
import { ChordPlanner } from './planner.ts'
import { Positions } from './positions.ts'
import { ProviderRecords } from './provider-records.ts'
import { ProviderStore } from './provider-store.ts'
import { Refusals } from './refusals.ts'
import { clockwise, clockwiseFrom } from './ring.ts'
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
  private readonly providers: ProviderStore
  private readonly records: ProviderRecords
  private readonly refused: Refusals
  /** Peers given to join(): the way back when every successor is lost. */
  private readonly bootstrap = new Set<string>()
  /** Addresses already written to the peer store, per peer. */
  private readonly published = new Map<string, string>()
  private readonly listeners = new Set<(change: OverlayChange) => void>()
  private readonly queryTimeoutMs: number
  private readonly lookupTimeoutMs: number
  private readonly providerReplicas: number
  private lifetime = new AbortController()
  private rpc: ChordRpc
  private maintenance: Maintenance
  private server: ChordServer
  private readonly tasks: PeriodicTask[]
  private readonly stabilizeTask: PeriodicTask
  private maintenancePaused = false
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
      this.wake()
    }, peer => !this.refused.has(peer))
    this.addresses = new AddressBook(peer => this.bootstrap.has(peer) || this.state.knownPeers().includes(peer))
    this.rpc = this.createRpc()
    this.maintenance = this.createMaintenance()
    this.server = this.createServer()
    this.records = this.createRecords()
    const backoff = init.maintenanceBackoff ?? DEFAULT_MAINTENANCE_BACKOFF
    if (!Number.isFinite(backoff) || backoff < 1) throw new InvalidInputError(`chord maintenanceBackoff must be a number >= 1, got ${backoff}`)
    this.stabilizeTask = new PeriodicTask('stabilize', init.stabilizeIntervalMs ?? DEFAULT_STABILIZE_INTERVAL_MS, async options => {
      const version = this.state.neighbourVersion
      const list = this.state.successors.join()
      // a peer whose join found nobody yet tries again through its bootstrap peers
      if (this.state.alone && this.bootstrap.size > 0) {
        await this.joinThrough([...this.bootstrap], options)
      }
      await this.maintenance.stabilize(options)
      const listChanged = this.state.successors.join() !== list
      if (listChanged) this.tellPredecessor()
      // a changed list too: lists fill by one peer per round down the ring
      return this.state.neighbourVersion !== version || listChanged
    }, this.log, backoff)
    this.tasks = [
      this.stabilizeTask,
      new PeriodicTask('fix-fingers', init.fixFingersIntervalMs ?? DEFAULT_FIX_FINGERS_INTERVAL_MS, async options => {
        const fingers = JSON.stringify(this.state.fingers.distinct())
        await this.maintenance.fixFinger(options)
        return JSON.stringify(this.state.fingers.distinct()) !== fingers
      }, this.log, backoff),
      new PeriodicTask('check-predecessor', init.checkPredecessorIntervalMs ?? DEFAULT_CHECK_PREDECESSOR_INTERVAL_MS, async options => {
        const changed = await this.maintenance.checkPredecessor(options)
        this.providers.prune()
        return changed
      }, this.log, backoff),
      new PeriodicTask('reprovide', init.reprovideIntervalMs ?? DEFAULT_REPROVIDE_INTERVAL_MS, async options => { await this.records.reprovide(options) }, this.log)
    ]
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
    await this.components.registrar.handle(CHORD_PROTOCOL, this.server.handle, {
      maxInboundStreams: MAX_INBOUND_STREAMS,
      maxOutboundStreams: MAX_OUTBOUND_STREAMS
    })
    this.components.events.addEventListener('peer:identify', this.refused.onIdentify)
    this.components.events.addEventListener('peer:disconnect', this.onDisconnect)
    for (const task of this.tasks) {
      task.start(this.lifetime.signal)
      task.setPaused(this.maintenancePaused)
    }
    this.started = true
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
    for (const task of this.tasks) task.stop()
    this.lifetime.abort(new ChordNotRunningError('the Chord overlay stopped'))
    this.components.events.removeEventListener('peer:identify', this.refused.onIdentify)
    this.components.events.removeEventListener('peer:disconnect', this.onDisconnect)
    this.refused.clearPending()
    await this.components.registrar.unhandle(CHORD_PROTOCOL)
    this.rpc.closeAll()
    this.state.reset()
    this.providers.clear()
  }

  async leave (options: AbortOptions = {}): Promise<void> {
    if (!this.started) return
    this.leaving ??= this.leaveRing(options)
    await this.leaving
  }

  private async leaveRing (options: AbortOptions): Promise<void> {
    for (const task of this.tasks) task.stop()
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
    const goodbye = {
      leave: {
        predecessor: predecessor != null ? this.peerMessage(predecessor) : null,
        successors: [...successors, ...(this.state.wrapped ? [this.state.self] : [])].map(p => this.peerMessage(p))
      }
    }
    const neighbours = [...new Set([predecessor, successors[0]].filter((p): p is string => p != null))]
    await Promise.all(neighbours.map(async peer => {
      try {
        await this.rpc.request(peer, goodbye, { signal: farewell })
      } catch (err) {
        this.log('%s did not take our leave: %s', peer, (err as Error).message)
      }
    }))
    this.log('left the ring (successor %s, predecessor %s)', successors[0], predecessor)
    this.rpc.closeAll()
    this.state.reset()
  }

  // ---- maintenance pace ----

  pauseMaintenance (paused: boolean): void {
    this.maintenancePaused = paused
    for (const task of this.tasks) task.setPaused(paused)
    this.log('maintenance %s', paused ? 'paused' : 'resumed')
  }

  /** Something changed or failed: every maintenance timer back to its base interval. */
  private wake (): void {
    for (const task of this.tasks) task.wake()
  }

  /** A peer this one routes through dropped its connection: it may be gone (stabilize finds out). */
  private readonly onDisconnect = (event: CustomEvent<PeerId>): void => {
    const peer = event.detail.toString()
    if (this.state.predecessor === peer || this.state.successors.includes(peer) || this.state.fingers.peers().has(peer)) this.wake()
  }

  /**
   * This peer's successor list changed: a ping tells its predecessor, whose
   * list follows this one, to stabilize soon (it may have backed off).
   */
  private tellPredecessor (): void {
    const predecessor = this.state.predecessor
    if (predecessor == null || this.maintenancePaused) return
    this.rpc.request(predecessor, { ping: {} }, { signal: this.lifetime.signal }).catch(err => {
      this.log('%s did not take the news of a changed list: %s', predecessor, (err as Error).message)
    })
  }

  /** A peer did not answer a query: it leaves the fingers (stabilize owns the successor list), and maintenance speeds up. */
  private failed (peer: string): void {
    this.state.forgetPeer(peer)
    this.wake()
  }

  // ---- Overlay: identifiers and order ----

  idOfPeer (peerId: string): Uint8Array {
    return this.positions.idOfPeer(peerId)
  }

  idOfKey (key: Uint8Array): Uint8Array {
    return this.positions.idOfKey(key)
  }

  order (key: Uint8Array, peers: Iterable<string>): string[] {
    return clockwiseFrom(this.positions.ofKey(key), new Set(peers), peer => this.positions.ofPeer(peer))
  }

  rank (key: Uint8Array, peerId: string, among: Iterable<string>): number {
    const origin = this.positions.ofKey(key)
    const own = clockwise(origin, this.positions.ofPeer(peerId))
    let before = 0
    for (const peer of new Set(among)) {
      if (peer !== peerId && clockwise(origin, this.positions.ofPeer(peer)) < own) before++
    }
    return before
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
  async join (multiaddrs: string[], options: AbortOptions = {}): Promise<{ connected: number, failed: number }> {
    this.checkRunning()
    const reached: string[] = []
    let failed = 0
    await Promise.all(multiaddrs.map(async text => {
      try {
        const addr = multiaddr(text)
        const signal = AbortSignal.any([this.lifetime.signal, AbortSignal.timeout(this.queryTimeoutMs), ...(options.signal != null ? [options.signal] : [])])
        const connection = await this.components.connectionManager.openConnection(addr, { signal })
        const peer = connection.remotePeer.toString()
        if (peer === this.state.self) { failed++; return }
        this.addresses.add(peer, [withPeerId(addr, peer)])
        await this.rpc.request(peer, { ping: {} }, options)
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

  /** One join at a time: a second caller (the stabilize timer retrying) waits for the one under way. */
  private async joinThrough (seeds: string[], options: AbortOptions, live: string[] = []): Promise<void> {
    if (this.joining == null) {
      this.joining = this.maintenance.join(seeds, options, live)
        .then(joined => { if (joined) this.stabilizeTask.runNow() })
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
    for (const peer of responsible) this.publish(peer)
    return { responsible, path: outcome.path, hops: outcome.hops, messages: outcome.messages, ms: outcome.ms }
  }

  planner (): ResponsiblePlanner {
    if (!this.handingOver) this.checkRunning()
    return new ChordPlanner({
      ownWindow: () => this.state.ownWindow(),
      findWindow: async (key, count, options) => {
        const outcome = await this.findSuccessors(key, count, { signal: this.lookupSignal(options ?? {}) })
        for (const peer of outcome.window.peers) this.publish(peer)
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
      learn: peer => { this.learn(peer) },
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

  /** Remembers where a peer named in a message can be reached. */
  private learn (peer: PeerInfo): void {
    if (peer.id === this.state.self || this.refused.has(peer.id)) return
    this.addresses.add(peer.id, peer.addrs)
  }

  /** Writes a peer's addresses to the peer store (once per address set), for Shoal's other protocols. */
  private publish (peer: string): void {
    if (peer === this.state.self) return
    const addrs = this.addresses.get(peer)
    if (addrs.length === 0) return
    const text = addrs.map(a => a.toString()).join(' ')
    if (this.published.get(peer) === text) return
    this.published.set(peer, text)
    if (this.published.size > 4 * MAX_REFUSED_PEERS) this.published.delete(this.published.keys().next().value as string)
    this.components.peerStore.merge(peerIdFromString(peer), { multiaddrs: addrs }).catch(err => {
      this.log('could not record the addresses of %s: %s', peer, (err as Error).message)
    })
  }

  /** This peer's addresses, read again at most every SELF_ADDRESSES_MS (reading them asks every listener). */
  private ownAddrs (): Multiaddr[] {
    const now = performance.now()
    if (this.own == null || now - this.own.at > SELF_ADDRESSES_MS) {
      const addrs = this.components.addressManager.getAddresses()
        .map(addr => { try { return withPeerId(addr, this.state.self) } catch { return undefined } })
        .filter((addr): addr is Multiaddr => addr != null)
        .slice(0, MAX_ADDRS_PER_PEER)
      this.own = { at: now, addrs, message: this.infoMessage({ id: this.state.self, addrs }) }
    }
    return this.own.addrs
  }

  private own: { at: number, addrs: Multiaddr[], message: PeerMessage } | undefined

  private peerMessage (peer: string): PeerMessage {
    if (peer === this.state.self) {
      this.ownAddrs()
      return this.own!.message
    }
    return this.infoMessage({ id: peer, addrs: this.addresses.get(peer) })
  }

  private infoMessage (peer: PeerInfo): PeerMessage {
    return { id: peerIdBytes(peer.id), addrs: peer.addrs.slice(0, MAX_ADDRS_PER_PEER).map(a => a.bytes) }
  }

  private changed (change: OverlayChange): void {
    for (const peer of change.added) this.publish(peer)
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
      self: () => this.peerMessage(this.state.self),
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
      learn: peer => { this.learn(peer) },
      failed: peer => { this.failed(peer) },
      fallbackSeeds: () => [...this.bootstrap],
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
      ownAddrs: () => this.ownAddrs(),
      peerMessage: peer => this.peerMessage(peer),
      infoMessage: peer => this.infoMessage(peer),
      found: provider => {
        this.learn(provider)
        this.publish(provider.id)
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
      peerMessage: peer => this.peerMessage(peer),
      learn: peer => { this.learn(peer) },
      acceptsRecord: (key, replicas) => this.records.accepts(key, replicas),
      closed: () => this.leaving != null,
      log: this.log,
      onRequest: (operation, from) => {
        this.answered++
        // the successor's list changed (tellPredecessor): this one follows it
        if (operation === 'ping' && from === this.state.successors[0]) this.stabilizeTask.wake()
      }
    })
  }
}

function checkCount (field: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new InvalidInputError(`chord ${field} must be an integer 1..${max}, got ${value}`)
  return value
}
