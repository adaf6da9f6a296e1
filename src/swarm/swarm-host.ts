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
 * Peers start `startConcurrency` at a time, the first one bootstrapped off the
 * given list, each later one off up to two given addresses and two random
 * peers of this host already up, so no single peer is everyone's contact.
 * (Starting every peer first and joining them afterwards was measured and
 * was slower: 100 peers joining at once overload the few seed peers.)
 */
import { SHUTDOWN_TIMEOUT_MS } from '../constants.ts'
import { ShoalPeer } from '../peer/peer.ts'
import { mapConcurrent } from '../utils/wait.ts'

export interface SwarmHostOptions {
  repos: string[]
  bootstrap: string[]
  startConcurrency?: number
  log?: (line: string) => void
}

const pick = <T>(items: T[], count: number): T[] => {
  const pool = [...items]
  const out: T[] = []
  while (out.length < count && pool.length > 0) out.push(pool.splice(Math.floor(Math.random() * pool.length), 1)[0])
  return out
}

/** Starts the peers, runs until every peer has stopped or a signal came. */
export async function runSwarmHost (options: SwarmHostOptions): Promise<void> {
  const log = options.log ?? ((line: string) => { process.stdout.write(line + '\n') })
  const peers: ShoalPeer[] = []
  let running = 0
  let allStopped!: () => void
  const done = new Promise<void>(resolve => { allStopped = resolve })
  const stopOne = async (peer: ShoalPeer): Promise<void> => {
    if (!peer.isStarted) return
    await peer.stop().catch(err => { log(`peer ${peer.repo.path} did not stop cleanly: ${(err as Error).message}`) })
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

  const given = options.bootstrap
  const up: ShoalPeer[] = []
  try {
    const startOne = async (repo: string, i: number): Promise<void> => {
      if (stopping) return
      const bootstrap = i === 0
        ? given
        : [...pick(given, 2), ...pick(up, 2).flatMap(p => p.multiaddrs())]
      const peer = await ShoalPeer.open(repo, {
        bootstrap,
        // the process's own metrics once per host, not once per peer (see libp2p.ts)
        processMetrics: i === 0,
        onShutdownRequested: () => { void stopOne(peer) }
      })
      peers.push(peer)
      await peer.start()
      running++
      up.push(peer)
      log(`peer ${peer.peerId} (${repo}) up, API ${peer.apiAddress}`)
    }
    // the first peer alone: the others bootstrap off it (in the seed host,
    // which has no bootstrap list, they would otherwise start knowing no one)
    if (options.repos.length > 0) await startOne(options.repos[0], 0)
    await mapConcurrent(options.repos.slice(1), options.startConcurrency ?? 8, async (repo, i) => { await startOne(repo, i + 1) })
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
