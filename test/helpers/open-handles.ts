/**
 * Mocha root hooks (.mocharc.json `require`): the test process must end by
 * itself once the suite is done, every peer, daemon, socket and timer of
 * the tests released. If something still keeps it alive OPEN_HANDLES_GRACE_MS
 * after the last test, this lists what (sockets with their addresses,
 * timers with their callbacks, child processes) and fails the run, instead
 * of hanging or of `exit: true` hiding the leak.
 */

const OPEN_HANDLES_GRACE_MS = 15_000

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

export const mochaHooks = {
  afterAll (): void {
    const timer = setTimeout(() => {
      const getHandles = (process as unknown as { _getActiveHandles: () => Handle[] })._getActiveHandles
      const handles = getHandles().filter(h => h !== (process.stdout as unknown) && h !== (process.stderr as unknown) && h !== (process.stdin as unknown))
      process.stderr.write(`\nthe test process is still alive ${OPEN_HANDLES_GRACE_MS / 1000} s after the last test; what keeps it:\n` +
        `  resources: ${JSON.stringify(process.getActiveResourcesInfo())}\n` +
        handles.map(h => `  ${describeHandle(h)}\n`).join(''))
      // (mocha's own exit listener sets the exit code to the failure count: this one runs after it)
      process.on('exit', () => { process.exitCode = 1 })
      process.exit(1)
    }, OPEN_HANDLES_GRACE_MS)
    // fires only if something else keeps the process alive: a leak
    timer.unref()
  }
}
