/**
 * Mocha root hooks (.mocharc.json `require`): every peer, daemon, socket,
 * child process and timer a test file opens is released by the end of it.
 *
 * The suite runs in parallel (`--parallel`): each spec file runs in a
 * worker process, and these hooks run around each file. After the file's
 * last test, the handles that keep a process alive and were not there
 * before it started must go within OPEN_HANDLES_GRACE_MS; if any is left,
 * the file's "after all" hook fails with a list of them (sockets with their
 * addresses, timers with their callbacks, child processes), so the leak is
 * named next to the file that made it, instead of hanging the run.
 *
 * Run serially (`npx mocha FILE`), the same check covers the whole run, and
 * a last timer (unref'd: it only fires if something else keeps the process
 * alive) makes sure a leak the check could not see still fails the run
 * rather than hanging it.
 */

const OPEN_HANDLES_GRACE_MS = 15_000
const POLL_MS = 50

interface Handle {
  constructor?: { name?: string }
  localAddress?: string
  localPort?: number
  remoteAddress?: string
  remotePort?: number
  pid?: number
  spawnargs?: string[]
  _idleTimeout?: number
  _onTimeout?: () => void
  hasRef?: () => boolean
  address?: () => unknown
}

function describeHandle (h: Handle): string {
  const name = h.constructor?.name ?? typeof h
  switch (name) {
    case 'Socket':
      return `Socket ${h.localAddress ?? ''}:${h.localPort ?? ''} -> ${h.remoteAddress ?? ''}:${h.remotePort ?? ''}`
    case 'Server':
      return `Server listening on ${JSON.stringify(h.address?.())}`
    case 'Timeout':
      return `Timeout every/after ${h._idleTimeout} ms: ${String(h._onTimeout).slice(0, 300)}`
    case 'ChildProcess':
      return `ChildProcess ${h.pid}: ${(h.spawnargs ?? []).join(' ').slice(0, 300)}`
    default:
      return name
  }
}

/** Handles that keep this process alive, without its own stdio. */
function liveHandles (): Handle[] {
  const getHandles = (process as unknown as { _getActiveHandles: () => Handle[] })._getActiveHandles
  return getHandles().filter(h =>
    h !== (process.stdout as unknown) && h !== (process.stderr as unknown) && h !== (process.stdin as unknown) &&
    (typeof h.hasRef !== 'function' || h.hasRef()))
}

/** A mocha worker (a forked child with an IPC channel), as opposed to a serial run's only process. */
const inWorker = typeof process.send === 'function'

let before = new Set<Handle>()

export const mochaHooks = {
  beforeAll (): void {
    before = new Set(liveHandles())
  },

  async afterAll (this: Mocha.Context): Promise<void> {
    const deadline = Date.now() + OPEN_HANDLES_GRACE_MS
    let left = liveHandles().filter(h => !before.has(h))
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
      left = liveHandles().filter(h => !before.has(h))
    }
    if (!inWorker) exitIfStillAlive()
    if (left.length > 0) {
      const files = [...new Set((this.test?.parent?.suites ?? []).map(s => s.file).filter(f => f != null))]
      throw new Error(`still open ${OPEN_HANDLES_GRACE_MS / 1000} s after the last test of ${files.join(', ') || 'the run'}:\n` +
        `  resources: ${JSON.stringify(process.getActiveResourcesInfo())}\n` +
        left.map(h => `  ${describeHandle(h)}\n`).join(''))
    }
  }
}

/** A serial run's last guard: fails the run if the process is still alive a while after mocha is done. */
function exitIfStillAlive (): void {
  const timer = setTimeout(() => {
    process.stderr.write(`\nthe test process is still alive ${OPEN_HANDLES_GRACE_MS / 1000} s after the last test; what keeps it:\n` +
      `  resources: ${JSON.stringify(process.getActiveResourcesInfo())}\n` +
      liveHandles().map(h => `  ${describeHandle(h)}\n`).join(''))
    // (mocha's own exit listener sets the exit code to the failure count: this one runs after it)
    process.on('exit', () => { process.exitCode = 1 })
    process.exit(1)
  }, OPEN_HANDLES_GRACE_MS)
  // fires only if something else keeps the process alive: a leak
  timer.unref()
}
