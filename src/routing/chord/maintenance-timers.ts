/**
 * When Chord's maintenance runs: stabilize, fix-fingers, check-predecessor
 * and reprovide, each on its own adaptive timer (periodic.ts). An idle ring
 * backs off to `backoff` times each base interval; the timers come back:
 *
 *  - to the base pace, whenever the routing state changes;
 *  - sooner (a quarter of it, fix-fingers excepted), when a neighbour may be
 *    gone: a query failed, or a peer in the routing state dropped its
 *    connection;
 *  - stabilize alone, when the first successor says its list changed (a
 *    ping: each peer's list is its successor's, so a change travels back
 *    along the ring at once, not one backed-off round per peer). A round
 *    that changes this peer's list sends that ping to its predecessor, and
 *    a peer whose predecessor is replaced by a closer one (a join) sends it
 *    to the old predecessor, whose successor that newcomer now is.
 *
 * Paused, none runs (the failure experiment).
 */
import type { AbortOptions, Logger } from '@libp2p/interface'
import type { Maintenance } from './maintenance.ts'
import { PeriodicTask } from './periodic.ts'
import type { RingState } from './ring-state.ts'
import type { ChordRpc } from './rpc.ts'

export interface MaintenanceTimersInit {
  stabilizeIntervalMs: number
  fixFingersIntervalMs: number
  checkPredecessorIntervalMs: number
  reprovideIntervalMs: number
  backoff: number
  state: RingState
  maintenance: Maintenance
  rpc: ChordRpc
  /** Runs first in every stabilize round (a restarted or lone peer finds its way onto the ring). */
  beforeStabilize: (options: AbortOptions) => Promise<void>
  reprovide: (options: AbortOptions) => Promise<void>
  /** After each check-predecessor round (expired provider records go). */
  housekeeping: () => void
  log: Logger
}

export class MaintenanceTimers {
  private readonly init: MaintenanceTimersInit
  private readonly stabilize: PeriodicTask
  private readonly fixFingers: PeriodicTask
  private readonly tasks: PeriodicTask[]
  private pausedNow = false
  /** The predecessor at the last change. */
  private predecessor: string | undefined
  private signal: AbortSignal | undefined

  constructor (init: MaintenanceTimersInit) {
    this.init = init
    const { state, maintenance, backoff, log } = init
    this.stabilize = new PeriodicTask('stabilize', init.stabilizeIntervalMs, async options => {
      const version = state.neighbourVersion
      const list = state.successors.join()
      await init.beforeStabilize(options)
      await maintenance.stabilize(options)
      const listChanged = state.successors.join() !== list
      if (listChanged) this.tellPredecessor()
      // a changed list too: lists fill by one peer per round down the ring
      return state.neighbourVersion !== version || listChanged
    }, log, backoff)
    this.fixFingers = new PeriodicTask('fix-fingers', init.fixFingersIntervalMs, async options => {
      await maintenance.fixFinger(options)
    }, log, backoff)
    this.tasks = [
      this.stabilize,
      this.fixFingers,
      new PeriodicTask('check-predecessor', init.checkPredecessorIntervalMs, async options => {
        const changed = await maintenance.checkPredecessor(options)
        init.housekeeping()
        return changed
      }, log, backoff),
      new PeriodicTask('reprovide', init.reprovideIntervalMs, init.reprovide, log)
    ]
  }

  get paused (): boolean { return this.pausedNow }

  start (signal: AbortSignal): void {
    this.signal = signal
    for (const task of this.tasks) {
      task.start(signal)
      task.setPaused(this.pausedNow)
    }
  }

  stop (): void {
    this.signal = undefined
    this.predecessor = undefined
    for (const task of this.tasks) task.stop()
  }

  setPaused (paused: boolean): void {
    this.pausedNow = paused
    for (const task of this.tasks) task.setPaused(paused)
  }

  /**
   * The routing state changed: every timer at its base pace. A predecessor
   * replaced by a closer peer is told (a ping): its successor is now that
   * peer, which its next stabilize, brought forward, finds.
   */
  changed (): void {
    for (const task of this.tasks) task.wake(false)
    const predecessor = this.init.state.predecessor
    const before = this.predecessor
    this.predecessor = predecessor
    if (before != null && predecessor != null && before !== predecessor) this.tell(before)
  }

  /** A neighbour may be gone: stabilize and check-predecessor soon, fix-fingers at its base pace. */
  wake (): void {
    for (const task of this.tasks) task.wake(task !== this.fixFingers)
  }

  /** A peer dropped its connection: wake when it is one this peer routes through. */
  disconnected (peer: string): void {
    const { state } = this.init
    if (state.predecessor === peer || state.successors.includes(peer) || state.fingers.peers().has(peer)) this.wake()
  }

  /** A ping came from `peer`: from the first successor, it says its list changed. */
  pinged (peer: string): void {
    if (peer === this.init.state.successors[0]) this.stabilize.wake()
  }

  /** A stabilize round right away (a peer that just joined or restarted). */
  stabilizeNow (): void {
    this.stabilize.runNow()
  }

  /** This peer's list changed: its predecessor, whose list follows it, stabilizes soon. */
  private tellPredecessor (): void {
    const predecessor = this.init.state.predecessor
    if (predecessor != null) this.tell(predecessor)
  }

  /** A ping to a peer that has this one as first successor: it stabilizes soon (pinged). */
  private tell (peer: string): void {
    const signal = this.signal
    if (this.pausedNow || signal == null) return
    this.init.rpc.request(peer, { ping: {} }, { signal }).catch(err => {
      this.init.log('%s did not take the news of a change: %s', peer, (err as Error).message)
    })
  }
}
