/**
 * The control API's address. Its own module, without the config's other
 * dependencies: the CLI checks `--api` as it parses, and every command pays
 * for what the CLI loads (the multiaddr parser the config needs is slow to
 * load).
 */
import { InvalidConfigError } from '../errors.ts'

/** Parses "HOST:PORT" and refuses anything but a loopback host. */
export function parseApiAddress (value: string, field = 'api', file = 'config'): { host: string, port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value)
  const fail = (why: string): never => {
    throw new InvalidConfigError(`invalid ${file === 'config' ? 'API address' : `config ${file}: field "${field}"`}: ${why}`)
  }
  if (match == null) return fail(`expected "HOST:PORT", got "${value}"`)
  const host = match[1].replace(/^\[|\]$/g, '')
  const port = Number(match[2])
  if (port > 65535) return fail(`port ${port} is out of range`)
  if (!(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    return fail(`host must be loopback (127.0.0.1, ::1 or localhost), got "${host}": the API is for this machine only`)
  }
  return { host, port }
}
