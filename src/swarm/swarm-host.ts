/**
 * A swarm host: one process running several Shoal peers, each on its own
 * repo, identity, listen port and control API (`<repo>/api`), exactly as if
 * each ran its own `shoal daemon`. `shoal swarm up` uses hosts for big swarms
 * (see process-swarm.ts for when and why); it runs them as the hidden command
 * `shoal swarm host --repos R1,R2,... [--bootstrap MA]...`.
 *
 * Stopping:
 * - SIGTERM / SIGINT to the host stops all of its peers cleanly, then exits.
 * - One peer alone: `POST /api/v1/shutdown` on that peer's API (what
 *   `shoal swarm stop --peer I` does); the host exits once its last peer
 *   has stopped.
 *
 * Peers start `startConcurrency` at a time, each bootstrapped off the given
 * list (`swarm up` gives none: once every peer of every host is up, it tells
 * each peer whom to connect to through its API, see process-swarm.ts).
 */
import { ShoalDaemon } from '../api/daemon.ts'
import { SHUTDOWN_TIMEOUT_MS } from '../constants.ts'
import { mapConcurrent } from '../utils/wait.ts'

export interface SwarmHostOptions {
  repos: string[]
  bootstrap: string[]
  /** The swarm hands its peers their contacts (see KademliaInit.plannedJoin); false: they join through seeds as any daemon does. */
  plannedJoin: boolean
  startConcurrency?: number
  log?: (line: string) => void
}

/** Starts the peers, runs until every peer has stopped or a signal came. */
export async function runSwarmHost (options: SwarmHostOptions): Promise<void> {
  const log = options.log ?? ((line: string) => { process.stdout.write(line + '\n') })
  const peers: ShoalDaemon[] = []
  let running = 0
  let allStopped!: () => void
  const done = new Promise<void>(resolve => { allStopped = resolve })
  const stopOne = async (daemon: ShoalDaemon): Promise<void> => {
    const { peer } = daemon
    if (!peer.isStarted) return
    await daemon.stop()
    log(`peer ${peer.peerId} (${peer.repo.path}) stopped`)
    if (--running === 0) allStopped()
  }
  const stopAll = async (): Promise<void> => {
    const timer = setTimeout(() => {
      log(`host did not stop within ${SHUTDOWN_TIMEOUT_MS} ms, exiting`)
      process.exit(1)
    }, SHUTDOWN_TIMEOUT_MS)
    timer.unref()
    await Promise.all(peers.map(stopOne))
    clearTimeout(timer)
  }
  let stopping = false
  const onSignal = (): void => {
    if (stopping) return
    stopping = true
    log('signal received: stopping every peer of this host')
    void stopAll().then(() => { allStopped() })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)

  try {
    const startOne = async (repo: string, i: number): Promise<void> => {
      if (stopping) return
      const daemon = await ShoalDaemon.open(repo, {
        bootstrap: options.bootstrap,
        plannedJoin: options.plannedJoin,
        // the process's own metrics once per host, not once per peer (see libp2p.ts)
        processMetrics: i === 0,
        onShutdownRequested: () => { void stopOne(daemon) }
      })
      peers.push(daemon)
      await daemon.start()
      running++
      log(`peer ${daemon.peer.peerId} (${repo}) up, API ${daemon.apiAddress}`)
    }
    await mapConcurrent(options.repos, options.startConcurrency ?? 8, startOne)
  } catch (err) {
    log(`a peer failed to start: ${(err as Error).message}`)
    stopping = true
    await stopAll()
    throw err
  }
  log(`host ready: ${running} peers`)
  if (running > 0) await done
  process.off('SIGTERM', onSignal)
  process.off('SIGINT', onSignal)
}
