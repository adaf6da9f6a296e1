/**
 * A peer as a daemon runs it: the peer, then its control API in front of
 * it, with the API's address written to `<repo>/api` for clients to find.
 * `shoal daemon` runs one; a swarm host runs one per hosted peer.
 *
 * start: peer.start() -> API listening -> <repo>/api written
 * stop:  API closed -> <repo>/api removed -> peer.stop()
 */
import type { ShoalPeerInit } from '../peer/peer.ts'
import { ShoalPeer } from '../peer/peer.ts'
import { startApiServer, type ApiServer } from './server.ts'

export interface ShoalDaemonInit extends ShoalPeerInit {
  /** API HOST:PORT; default: the config's. */
  api?: string
  /**
   * Called when a client asks this peer to shut down (`POST /api/v1/shutdown`);
   * default: the daemon stops itself. `shoal daemon` exits; a swarm host
   * stops just this peer.
   */
  onShutdownRequested?: () => void
}

export class ShoalDaemon {
  readonly peer: ShoalPeer
  private readonly init: ShoalDaemonInit
  private api?: ApiServer
  /** True once this daemon wrote <repo>/api (only then is removing it ours to do). */
  private wroteApiFile = false
  private starting?: Promise<void>

  constructor (peer: ShoalPeer, init: ShoalDaemonInit = {}) {
    this.peer = peer
    this.init = init
  }

  /** Opens a repo folder and returns a daemon on it (not started). */
  static async open (repoPath: string, init: ShoalDaemonInit = {}): Promise<ShoalDaemon> {
    return new ShoalDaemon(await ShoalPeer.open(repoPath, init), init)
  }

  /** HOST:PORT the API listens on, once started. */
  get apiAddress (): string | undefined {
    return this.api?.address
  }

  get isStarted (): boolean {
    return this.api != null
  }

  async start (): Promise<void> {
    if (this.api != null) return
    this.starting ??= this.doStart().finally(() => { this.starting = undefined })
    return this.starting
  }

  private async doStart (): Promise<void> {
    const { peer } = this
    await peer.start()
    try {
      this.api = await startApiServer(peer, {
        address: this.init.api ?? peer.repo.config.api,
        token: await peer.repo.apiToken(),
        logger: peer.logger,
        onShutdownRequested: this.init.onShutdownRequested ?? (() => { void this.stop() })
      })
      await peer.repo.writeApiAddress(this.api.address)
      this.wroteApiFile = true
    } catch (err) {
      await this.teardown()
      throw err
    }
  }

  /** Never throws: a step that fails is logged and the next one runs. */
  async stop (): Promise<void> {
    // a start that failed has undone its own steps
    await this.starting?.catch(() => {})
    await this.teardown()
  }

  /** Reverse order of start; every step runs even if one before it failed. */
  private async teardown (): Promise<void> {
    const log = this.peer.logger.forComponent('shoal:daemon')
    const steps: Array<() => Promise<void>> = [
      async () => {
        const api = this.api
        this.api = undefined
        await api?.close()
      },
      async () => {
        if (!this.wroteApiFile) return
        this.wroteApiFile = false
        await this.peer.repo.removeApiAddress()
      },
      async () => { await this.peer.stop() }
    ]
    for (const step of steps) {
      await step().catch(err => { log.error('error while stopping - %e', err) })
    }
  }
}
