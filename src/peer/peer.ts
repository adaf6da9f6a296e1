/**
 * A Shoal peer: a repo (identity, config, datastore, lock), the content
 * store, the libp2p node with its overlay, placement and repair, the xfer
 * server and the fetcher, and bootstrapping. `start()` brings them up in
 * that order and `stop()` takes them down in reverse, closing every
 * connection, timer and store. What a user does with a peer is a method
 * here (`share`, `join`, `status`) or one of its services (`fetcher`,
 * `content`). The peer serves no API: a daemon (src/api/daemon.ts) puts the
 * control API in front of a started peer.
 */
import { LevelDatastore } from 'datastore-level'
import { Registry } from 'prom-client'
import type { AbortOptions, ComponentLogger, Logger, PeerId } from '@libp2p/interface'
import { BOOTSTRAP_RETRY_INTERVAL_MS, OVERLAY_LEAVE_TIMEOUT_MS, SHOAL_VERSION } from '../constants.ts'
import { ShoalError } from '../errors.ts'
import { FsBlockstore, type BlockstoreUsage } from '../store/blockstore.ts'
import { ContentStore } from '../store/content-store.ts'
import { placementMetrics } from '../placement/metrics.ts'
import { Placement } from '../placement/placement.ts'
import { REFETCH_TIMEOUT_MS, Repairer, type RepairReport } from '../placement/repairer.ts'
import { Fetcher } from '../exchange/index.ts'
import { UploadLimiter } from '../exchange/upload-limiter.ts'
import { MAX_INBOUND_XFER_STREAMS, XferServer } from '../exchange/xfer-server.ts'
import { Bootstrapper } from '../routing/bootstrap.ts'
import type { Overlay, RoutingSnapshot } from '../routing/index.ts'
import type { ShoalNode } from '../routing/libp2p.ts'
import { privateAddressesAllowed } from '../routing/private-addresses.ts'
import { XFER_PROTOCOL } from '../wire/xfer-messages.ts'
import { shoalLogger } from './logger.ts'
import { startPeerNode } from './peer-node.ts'
import { Repo } from './repo.ts'
import { share, type PeerShareOptions, type PeerShareResult, type ShareSource } from './share.ts'
import { parseByteSize } from '../utils/bytes.ts'

export interface ShoalPeerInit {
  /** Listen multiaddrs; default: the repo config's. */
  listen?: string[]
  /** Extra bootstrap multiaddrs, dialled with the config's. */
  bootstrap?: string[]
  /** libp2p metrics into a Prometheus registry (default true). */
  metrics?: boolean
  /** Node process metrics in that registry too (default true; see ShoalNodeInit). */
  processMetrics?: boolean
  logger?: ComponentLogger
  /**
   * One of a local swarm whose launcher tells the peer whom to connect to
   * (`join`): see ShoalNodeInit.plannedJoin. Default false.
   */
  plannedJoin?: boolean
}

export interface PeerStatus {
  peerId: string
  version: string
  repo: string
  uptimeSeconds: number
  multiaddrs: string[]
  connections: number
  peers: number
  dht: { mode: 'client' | 'server', routingTableSize: number, protocol: string, refreshing: boolean }
  store: BlockstoreUsage
}

export interface ConnectedPeer {
  peerId: string
  multiaddr: string
  direction: 'inbound' | 'outbound'
  openedAt: number
}

export class ShoalPeer {
  readonly repo: Repo
  readonly peerId: PeerId
  /** The logger of every part of this peer (a daemon gives it to the API too). */
  readonly logger: ComponentLogger
  private readonly init: ShoalPeerInit
  private readonly log: Logger
  private node?: ShoalNode
  private datastore?: LevelDatastore
  private contentStore?: ContentStore
  private placementService?: Placement
  private fetcherService?: Fetcher
  /** The upload rate limit of this peer's xfer server (config transfer.maxUploadRate; adjustable). */
  readonly uploadLimiter = new UploadLimiter(0)
  private repairer?: Repairer
  private registry?: Registry
  private bootstrapper?: Bootstrapper
  private startedAt = 0
  private starting?: Promise<void>
  private readonly holdingsListeners = new Set<() => void>()

  constructor (repo: Repo, init: ShoalPeerInit = {}) {
    this.repo = repo
    this.peerId = repo.peerId
    this.init = init
    this.logger = init.logger ?? shoalLogger()
    this.log = this.logger.forComponent('shoal:peer')
  }

  /** Opens a repo folder and returns a peer on it (not started). */
  static async open (repoPath: string, init: ShoalPeerInit = {}): Promise<ShoalPeer> {
    return new ShoalPeer(await Repo.open(repoPath), init)
  }

  get libp2p (): ShoalNode {
    if (this.node == null) throw new ShoalError('peer is not started')
    return this.node
  }

  get isStarted (): boolean {
    return this.node != null
  }

  /**
   * How this peer finds the peers responsible for a key (Kademlia or
   * Chord, config `overlay`; the libp2p service `overlay`): lookups,
   * planners, provider records, the routing state.
   */
  get overlay (): Overlay {
    return this.libp2p.services.overlay
  }

  /** Replica placement on the k closest peers, and the store protocol. */
  get placement (): Placement {
    if (this.placementService == null) throw new ShoalError('peer is not started')
    return this.placementService
  }

  /** Periodic repair passes finished since start. */
  get repairPasses (): number {
    return this.repairer?.completedPasses ?? 0
  }

  /** Runs one repair pass now (tests and `POST /api/v1/repair`). */
  async repairNow (signal?: AbortSignal): Promise<RepairReport> {
    if (this.repairer == null) throw new ShoalError('peer is not started')
    return this.repairer.runOnce(signal)
  }

  /** Downloads files from the peers that hold them. */
  get fetcher (): Fetcher {
    if (this.fetcherService == null) throw new ShoalError('peer is not started')
    return this.fetcherService
  }

  /** The local blockstore and holdings. */
  get content (): ContentStore {
    if (this.contentStore == null) throw new ShoalError('peer is not started')
    return this.contentStore
  }

  get metricsRegistry (): Registry | undefined {
    return this.registry
  }

  /**
   * Calls `listener` when what this peer holds changes with no call of its
   * own: another peer placed a replica here, or repair dropped one (the
   * dashboard's events). Returns the unsubscribe.
   */
  onHoldingsChange (listener: () => void): () => void {
    this.holdingsListeners.add(listener)
    return () => { this.holdingsListeners.delete(listener) }
  }

  async start (): Promise<void> {
    if (this.node != null) return
    this.starting ??= this.doStart().finally(() => { this.starting = undefined })
    return this.starting
  }

  private async doStart (): Promise<void> {
    const config = this.repo.config
    await this.repo.lock()
    try {
      this.datastore = new LevelDatastore(this.repo.file('datastore'))
      await this.datastore.open()
      this.contentStore = new ContentStore({
        datastore: this.datastore,
        blockstore: new FsBlockstore({}, { dir: this.repo.file('blocks'), sync: config.storage.sync }),
        logger: this.logger
      }, { quota: config.storage.quota, replicaQuota: config.storage.replicaQuota, replicas: config.replicas })
      await this.contentStore.open()
      this.registry = this.init.metrics === false ? undefined : new Registry()
      const listen = this.init.listen ?? config.listen
      const node = await startPeerNode(this.repo, {
        listen,
        datastore: this.datastore,
        metricsRegistry: this.registry,
        processMetrics: this.init.processMetrics,
        plannedJoin: this.init.plannedJoin,
        // a Chord peer leaving the ring hands the replicas it holds to the peers that take over
        onLeave: async (_leave, options) => { await this.handOver(options) },
        logger: this.logger
      })
      this.node = node
      this.startedAt = Date.now()
      const overlay = node.services.overlay
      const counters = placementMetrics(this.registry)
      // replicas other peers place here, and those repair drops, change the holdings with no call of ours
      const changed = (): void => {
        for (const listener of this.holdingsListeners) {
          // a listener's failure must not fail the store that called it
          try { listener() } catch (err) { this.log.error('holdings listener failed - %e', err) }
        }
      }
      const metrics = {
        ...counters,
        replicaStored: (bytes: number) => { counters.replicaStored(bytes); changed() },
        repairDropped: () => { counters.repairDropped(); changed() }
      }
      this.placementService = new Placement({ node, overlay, content: this.contentStore, logger: this.logger }, { metrics, replicas: config.replicas })
      await this.placementService.start()
      this.repairer = new Repairer({
        node,
        overlay,
        placement: this.placementService,
        content: this.contentStore,
        logger: this.logger,
        // incomplete DAGs held here are fetched again (the fetcher starts after the repairer, before any pass)
        refetch: async (root, signal) => this.fetcher.fetch(root, { signal, timeoutMs: REFETCH_TIMEOUT_MS })
      }, {
        intervalMs: config.repair.intervalSeconds * 1000,
        maxPushesPerRun: config.repair.maxPushesPerRun,
        replicas: config.replicas,
        // where private addresses are in use (one machine, a LAN), an address says nothing about who runs a peer
        oneProofPerAddress: !privateAddressesAllowed(config.connections.privateAddresses, listen, config.announce),
        metrics
      })
      this.repairer.start()
      this.uploadLimiter.setRate(byteRate(config.transfer.maxUploadRate))
      const xfer = new XferServer({
        content: this.contentStore,
        log: this.logger.forComponent('shoal:xfer'),
        limiter: this.uploadLimiter
      })
      await node.handle(XFER_PROTOCOL, xfer.handle, { maxInboundStreams: MAX_INBOUND_XFER_STREAMS, maxOutboundStreams: 64 })
      this.fetcherService = new Fetcher({
        content: this.contentStore,
        connection: node,
        overlay,
        logger: this.logger
      }, { replicas: config.replicas })
      this.bootstrapper = new Bootstrapper({ node, overlay }, {
        list: this.bootstrapList(),
        targetSize: config.dht.kBucketSize,
        routingTableSize: () => this.routingTableSize(),
        log: this.log,
        retryIntervalMs: BOOTSTRAP_RETRY_INTERVAL_MS
      })
      this.bootstrapper.start()
    } catch (err) {
      await this.teardown()
      throw err
    }
  }

  /**
   * Stops the peer. It first leaves the overlay gracefully (Chord: the
   * replicas it holds go to the peers that take them over, then its
   * neighbours are told); `leave: false` stops it as if it crashed.
   */
  async stop (options: { leave?: boolean } = {}): Promise<void> {
    // a start that failed has undone its own steps
    await this.starting?.catch(() => {})
    if (this.node == null) return
    await this.teardown(options.leave ?? true)
  }

  /** Reverse order of start; every step runs even if one before it failed. */
  private async teardown (leave = false): Promise<void> {
    this.bootstrapper?.stop()
    this.bootstrapper = undefined
    const steps: Array<() => Promise<void>> = [
      async () => { if (leave && this.node != null) await this.overlay.leave({ signal: AbortSignal.timeout(OVERLAY_LEAVE_TIMEOUT_MS) }) },
      async () => { await this.repairer?.stop(); this.repairer = undefined },
      async () => {
        const fetcher = this.fetcherService
        this.fetcherService = undefined
        await this.node?.unhandle(XFER_PROTOCOL)
        await fetcher?.stop()
      },
      async () => { await this.placementService?.stop(); this.placementService = undefined },
      async () => { await this.node?.stop(); this.node = undefined },
      async () => { await this.contentStore?.close(); this.contentStore = undefined },
      async () => { await this.datastore?.close(); this.datastore = undefined },
      async () => { this.registry?.clear(); this.registry = undefined },
      async () => { await this.repo.unlock() }
    ]
    for (const step of steps) {
      await step().catch(err => { this.log.error('error while stopping - %e', err) })
    }
  }

  /**
   * Pushes every replica held here to the peers responsible for it once
   * this peer is gone (a repair pass that counts this peer out), so a
   * graceful leave loses no copy (the overlay's leave calls it).
   */
  private async handOver (options: AbortOptions): Promise<void> {
    const report = await this.repairer?.runOnce(options.signal, { handOver: true })
    if (report != null && report.checked > 0) this.log('leaving: %d replicas handed over (%d copies pushed, %d missing)', report.checked, report.pushed, report.missing)
  }

  /** Bootstrap multiaddrs from config and init, without our own. */
  bootstrapList (): string[] {
    const self = this.peerId.toString()
    return [...new Set([...this.repo.config.bootstrap, ...(this.init.bootstrap ?? [])])]
      .filter(ma => !ma.endsWith(`/p2p/${self}`))
  }

  multiaddrs (): string[] {
    return this.node?.getMultiaddrs().map(ma => ma.toString()) ?? []
  }

  /** True while the peer is still looking itself up to fill its routing table. */
  get isBootstrapping (): boolean {
    return this.bootstrapper?.active ?? false
  }

  /**
   * Looks this peer up through the overlay again until its routing table
   * stops growing; local swarms call it on peers whose tables are still short.
   */
  refreshRouting (): void {
    this.bootstrapper?.refresh()
  }

  /**
   * Connects to these peers and keeps them as bootstrap peers (local swarms
   * hand every peer its contacts this way, see src/swarm/contact-plan.ts).
   */
  async join (multiaddrs: string[], options: AbortOptions & { successors?: boolean, fingers?: string[] } = {}): Promise<{ connected: number, failed: number }> {
    if (this.bootstrapper == null) throw new ShoalError('peer is not started')
    const self = this.peerId.toString()
    return this.bootstrapper.join(multiaddrs.filter(ma => !ma.endsWith(`/p2p/${self}`)), { signal: options.signal, successors: options.successors, fingers: options.fingers?.filter(ma => !ma.endsWith(`/p2p/${self}`)) })
  }

  /** Every peer in the overlay's routing state (without this peer), departed ones too. */
  routingTablePeers (): string[] {
    return this.node == null ? [] : peersIn(this.overlay.routing())
  }

  routingTableSize (): number {
    return this.routingTablePeers().length
  }

  peers (): ConnectedPeer[] {
    return this.libp2p.getConnections().map(c => ({
      peerId: c.remotePeer.toString(),
      multiaddr: c.remoteAddr.toString(),
      direction: c.direction,
      openedAt: c.timeline.open
    }))
  }

  status (): PeerStatus {
    const node = this.libp2p
    return {
      peerId: this.peerId.toString(),
      version: SHOAL_VERSION,
      repo: this.repo.path,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      multiaddrs: this.multiaddrs(),
      connections: node.getConnections().length,
      peers: node.getPeers().length,
      // every Shoal peer answers routing queries (kad-dht runs with clientMode false)
      dht: { mode: 'server', routingTableSize: this.routingTableSize(), protocol: this.overlay.protocol, refreshing: this.isBootstrapping },
      store: this.content.usage()
    }
  }

  /**
   * Imports a file (a path this process can read, or its bytes) and places
   * every block on its k responsible peers (k: `options.replicas`, default
   * the config's `replicas`); see share.ts.
   */
  async share (source: ShareSource, options: Partial<PeerShareOptions> = {}): Promise<PeerShareResult> {
    return share({ content: this.content, placement: this.placement, repoPath: this.repo.path }, source, {
      ...options,
      replicas: options.replicas ?? this.repo.config.replicas
    })
  }
}

/** The distinct peers of a routing snapshot. */
function peersIn (routing: RoutingSnapshot): string[] {
  if (routing.overlay === 'kademlia') return routing.buckets.flatMap(b => b.peers)
  return [...new Set([...(routing.predecessor == null ? [] : [routing.predecessor]), ...routing.successors, ...routing.fingers.map(f => f.peerId)])]
    .filter(id => id !== routing.self)
}

/** A validated rate setting (bytes/s or "10MiB") as bytes per second. */
function byteRate (value: number | string): number {
  return typeof value === 'number' ? value : parseByteSize(value) ?? 0
}
