/**
 * Repair, run by every peer on what it holds (repair-targets.ts: the
 * replicas it keeps for others, every block of the files it shared, and the
 * blocks of files it fetched that it is itself responsible for): every
 * interval (jittered ±25% so peers do not run in step) it finds each
 * replica's k responsible peers again (the overlay's planner, a few lookups
 * for all of them), asks those peers which blocks they hold, and pushes a
 * copy to each responsible peer that lacks one: after a holder leaves, the
 * next one takes its place; when a new peer joins closer to a key, it
 * receives the block. A holder that is no longer among the k responsible
 * drops its copy, but only once all k of them prove they hold the block
 * (/shoal/prove/1.0.0: a hash of the block with a fresh nonce; HAVE and
 * STORED are only claims, and a few peer IDs generated near a key could
 * otherwise make every honest holder let go). With `oneProofPerAddress`,
 * proofs from peers behind one IP address count once. A pass pushes at
 * most maxPushesPerRun copies; the rest wait for the next pass.
 *
 * A pass begins with the DAGs held here that were found incomplete (gc or
 * verify recorded them as needing repair: a node or leaf missing or
 * rotten): each is fetched again (`refetch`, the peer's fetcher), which
 * brings the missing blocks from their holders and clears the record; one
 * that cannot be fetched now stays recorded for the next pass.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { DEFAULT_REPLICAS } from '../constants.ts'
import type { ComponentLogger, Libp2p, Logger } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import type { Overlay } from '../routing/index.ts'
import type { ContentStore } from '../store/content-store.ts'
import type { PlacementMetrics } from './metrics.ts'
import type { Placement } from './placement.ts'
import { repairTargets } from './repair-targets.ts'
import { isHeld, StoreSession } from './store-client.ts'

export interface RepairerComponents {
  node: Pick<Libp2p, 'peerId' | 'dialProtocol' | 'getConnections'>
  overlay: Pick<Overlay, 'planner'>
  placement: Pick<Placement, 'whoHas' | 'proveHolders'>
  content: ContentStore
  logger: ComponentLogger
  /**
   * Fetches a DAG's missing blocks from the network (the peer's fetcher,
   * failing after REFETCH_TIMEOUT_MS without a block); without it,
   * incomplete DAGs wait for a user's fetch.
   */
  refetch?: (root: CID, signal: AbortSignal) => Promise<unknown>
}

/** How long a refetch of an incomplete DAG may go without a block before the pass moves on. */
export const REFETCH_TIMEOUT_MS = 60_000

export interface RepairerInit {
  intervalMs: number
  maxPushesPerRun: number
  /** config `replicas`: the k of a fetched file's blocks, and of a shared file whose holding has none (default DEFAULT_REPLICAS). */
  replicas?: number
  /**
   * Proofs from peers whose connections come from one IP address count as
   * one (default true): one host running many peer IDs near a key must not
   * stand for several holders. Off where addresses say nothing about who
   * runs a peer: a swarm on one machine, a LAN (config
   * `connections.privateAddresses` in effect).
   */
  oneProofPerAddress?: boolean
  metrics?: PlacementMetrics
}

export interface RepairReport {
  checked: number
  pushed: number
  bytes: number
  dropped: number
  /** Copies that could not be pushed (refused, unreachable, over the pass's limit). */
  missing: number
  /** Incomplete DAGs made whole by fetching their missing blocks again, and those still waiting. */
  refetched: number
  incomplete: number
  ms: number
}

export class Repairer {
  private readonly components: RepairerComponents
  private readonly init: RepairerInit
  private readonly log: Logger
  private timer?: ReturnType<typeof setTimeout>
  private controller?: AbortController
  private running?: Promise<RepairReport>
  private passes = 0

  constructor (components: RepairerComponents, init: RepairerInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('shoal:repair')
  }

  /** Repair passes finished since start. */
  get completedPasses (): number {
    return this.passes
  }

  start (): void {
    this.controller = new AbortController()
    this.schedule()
  }

  async stop (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    this.controller?.abort()
    // a failed pass was logged where it ran (schedule)
    await this.running?.catch(() => {})
  }

  private schedule (): void {
    if (this.controller?.signal.aborted !== false) return
    const jitter = 0.75 + Math.random() * 0.5
    this.timer = setTimeout(() => {
      this.running = this.runOnce(this.controller?.signal)
      this.running
        .then(report => { if (report.pushed + report.dropped > 0) this.log('repair: %o', report) })
        .catch(err => { if (this.controller?.signal.aborted !== true) this.log.error('repair pass failed - %e', err) })
        .finally(() => { this.passes++; this.running = undefined; this.schedule() })
    }, this.init.intervalMs * jitter)
    this.timer.unref?.()
  }

  /**
   * One pass over every block repair looks after here (repair-targets.ts).
   * `handOver`: this peer is leaving, so it counts itself out of every plan
   * and keeps its copies (and refetches nothing).
   */
  async runOnce (signal?: AbortSignal, options: { handOver?: boolean } = {}): Promise<RepairReport> {
    const started = performance.now()
    const { node, overlay, placement, content } = this.components
    const selfId = node.peerId.toString()
    this.init.metrics?.repairRun()
    const report: RepairReport = { checked: 0, pushed: 0, bytes: 0, dropped: 0, missing: 0, refetched: 0, incomplete: 0, ms: 0 }
    if (options.handOver !== true) await this.refetchIncomplete(report, signal)
    const byK = await repairTargets(content, this.init.replicas ?? DEFAULT_REPLICAS, this.log, signal)
    // a hand-over is this peer's last pass: every copy it can push, it pushes
    let budget = options.handOver === true ? Number.POSITIVE_INFINITY : this.init.maxPushesPerRun
    const planner = overlay.planner()
    if (options.handOver === true) planner.exclude([selfId])
    for (const [k, targets] of byK) {
      const cids = targets.map(t => t.cid)
      // peers gone since the routing tables last heard of them cannot answer:
      // leave them out and plan again, so the next closest take their place
      let plan = await planner.plan(cids.map(c => c.multihash.bytes), k, { signal })
      // a fetched file's blocks this peer is not responsible for are left to those that are
      const looked = (i: number): boolean => !targets[i].onlyIfResponsible || plan.responsible[i].includes(selfId)
      const ask = (): string[][] => plan.responsible.map((peers, i) => looked(i) ? peers : [])
      let asked = await placement.whoHas(cids, ask(), signal)
      for (let round = 0; asked.unreachable.length > 0 && round < 3; round++) {
        planner.exclude(asked.unreachable)
        plan = await planner.plan(cids.map(c => c.multihash.bytes), k, { signal })
        asked = await placement.whoHas(cids, ask(), signal)
      }
      report.checked += cids.filter((_, i) => looked(i)).length
      const holders = asked.holders
      // peer -> blocks it lacks
      const toPush = new Map<string, number[]>()
      cids.forEach((_, i) => {
        if (!looked(i)) return
        for (const peer of plan.responsible[i]) {
          if (peer === selfId || holders[i].includes(peer)) continue
          let list = toPush.get(peer)
          if (list == null) toPush.set(peer, list = [])
          list.push(i)
        }
      })
      for (const [peer, wanted] of toPush) {
        // a replica whose block went missing here (a bad disk, verify --repair)
        // cannot be pushed: count it, and push the others
        const present = await content.hasBlocks(wanted.map(i => cids[i]))
        const indexes = wanted.filter((_, j) => present[j])
        report.missing += wanted.length - indexes.length
        const allowed = indexes.slice(0, Math.max(0, budget))
        report.missing += indexes.length - allowed.length
        budget -= allowed.length
        if (allowed.length === 0) continue
        let answered = 0
        let session: StoreSession | undefined
        try {
          session = await StoreSession.open(node, peer, signal)
          await session.putMany(allowed.map(i => ({ cid: cids[i], load: async () => content.readBlock(cids[i]) })), k, (j, status, _message, size) => {
            const i = allowed[j]
            answered++
            if (isHeld(status)) {
              holders[i].push(peer)
              report.pushed++
              report.bytes += size
              this.init.metrics?.repairPushed(size)
            } else {
              report.missing++
            }
          }, signal)
          await session.close()
        } catch (err) {
          signal?.throwIfAborted()
          session?.abort(err as Error)
          report.missing += allowed.length - answered
          this.log('repair: pushing to %s failed: %s', peer, (err as Error).message)
        }
      }
      // not among the responsible any more, and every one of them says it
      // holds the block: let go once they prove it
      const leaving: number[] = []
      for (let i = 0; i < cids.length; i++) {
        const responsible = plan.responsible[i]
        if (!targets[i].mayDrop || responsible.includes(selfId) || responsible.length < k) continue
        const claimed = responsible.filter(p => holders[i].includes(p)).length
        if (claimed >= Math.min(k, responsible.length)) leaving.push(i)
      }
      if (leaving.length === 0 || options.handOver === true) continue
      const proven = await placement.proveHolders(
        leaving.map(i => cids[i]),
        leaving.map(i => plan.responsible[i].filter(p => holders[i].includes(p))),
        signal
      )
      for (let j = 0; j < leaving.length; j++) {
        const i = leaving[j]
        if (this.distinctHolders(proven[j]) < Math.min(k, plan.responsible[i].length)) continue
        await content.dropReplica(cids[i])
        report.dropped++
        this.init.metrics?.repairDropped()
      }
    }
    report.ms = Math.round(performance.now() - started)
    return report
  }

  /** Fetches again every held DAG recorded as incomplete. */
  private async refetchIncomplete (report: RepairReport, signal?: AbortSignal): Promise<void> {
    const { content, refetch } = this.components
    const needs = await content.needingRepair()
    if (refetch == null) { report.incomplete = needs.length; return }
    for (const need of needs) {
      signal?.throwIfAborted()
      try {
        await refetch(CID.parse(need.cid), signal ?? new AbortController().signal)
        report.refetched++
      } catch (err) {
        signal?.throwIfAborted()
        report.incomplete++
        this.log('repair: refetching incomplete %s failed: %s', need.cid, (err as Error).message)
      }
    }
  }

  /** How many holders these proofs stand for: one per peer, or one per IP address. */
  private distinctHolders (peers: string[]): number {
    if (this.init.oneProofPerAddress === false) return new Set(peers).size
    return new Set(peers.map(peer => this.addressOf(peer) ?? peer)).size
  }

  /** The IP address this peer's connection to `peer` comes from. */
  private addressOf (peer: string): string | undefined {
    for (const connection of this.components.node.getConnections(peerIdFromString(peer))) {
      const first = connection.remoteAddr.getComponents()[0]
      if ((first?.name === 'ip4' || first?.name === 'ip6') && first.value != null) return first.value
    }
    return undefined
  }
}
