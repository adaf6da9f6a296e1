/**
 * The component logger Shoal gives libp2p and its own services: the same as
 * @libp2p/logger's, except that while logging is off (DEBUG unset) every
 * component gets one shared logger that does nothing.
 *
 * Why: libp2p makes loggers all the time (for every connection, stream and
 * DHT query), and @libp2p/logger builds three debug instances each time,
 * each asking the OS whether stderr is a terminal (an isatty call): a
 * visible share of a swarm's start-up CPU (docs/benchmarks.md), for output
 * nobody sees. With DEBUG set (read when a logger is made), loggers are
 * @libp2p/logger's.
 */
import { defaultLogger } from '@libp2p/logger'
import type { ComponentLogger, Logger } from '@libp2p/interface'

const noop = (): void => {}

function disabledLogger (): Logger {
  const log = Object.assign(noop.bind(null), {
    enabled: false,
    error: noop,
    trace: noop,
    newScope: (): Logger => log
  })
  return log
}

const DISABLED = disabledLogger()

export function shoalLogger (): ComponentLogger {
  const debug = defaultLogger()
  return {
    forComponent: (name: string): Logger => (process.env.DEBUG ?? '') === '' ? DISABLED : debug.forComponent(name)
  }
}
