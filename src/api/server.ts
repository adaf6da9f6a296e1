/**
 * The daemon's control API: HTTP/JSON on a loopback address and on the
 * unix socket `<repo>/api.sock` (what the CLI uses, see api-socket.ts),
 * every route behind the bearer token from <repo>/api.token, each a thin
 * adapter over the peer. Routes are listed in docs/api.md. A daemon serves
 * it in front of a started peer (daemon.ts).
 */
import { timingSafeEqual } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { CID } from 'multiformats/cid'
import type { ComponentLogger } from '@libp2p/interface'
import { AGENT_VERSION, API_PREFIX, REPO_FILES } from '../constants.ts'
import { AddressInUseError, InvalidDagError, InvalidInputError, isShoalError, ShoalError, TimeoutError } from '../errors.ts'
import { parseApiAddress } from '../peer/config.ts'
import { multiaddrProblem } from '../peer/multiaddrs.ts'
import type { PeerStatus, ShoalPeer } from '../peer/peer.ts'
import { BlockNotFoundError, ContentNotFoundError, DiskFullError, QuotaExceededError } from '../store/errors.ts'
import { withSocketPath } from './api-socket.ts'
import { registerContentRoutes } from './content-routes.ts'
import { registerRoutingRoutes } from './routing-routes.ts'
import { registerUiRoutes } from './ui-routes.ts'

export interface ApiServerInit {
  /** HOST:PORT; port 0 picks a free one. */
  address: string
  token: string
  logger: ComponentLogger
  /**
   * `POST /api/v1/shutdown`, once answered: the daemon exits as on
   * SIGTERM; a swarm host stops just this peer.
   */
  onShutdownRequested: () => void
  /** The unix socket to serve too (default `<repo>/api.sock`); false: none. */
  socketPath?: string | false
}

/** `GET /status`: the peer's status and the API's own address. */
export interface StatusResponse extends PeerStatus {
  api: string | null
}

/** `GET /dht/closest-peers`: the other peers a full lookup finds, closest first. */
export interface ClosestPeersResult {
  peers: string[]
  hops: number
  /** Peers sent a query during the lookup. */
  queried: number
  ms: number
}

export interface ApiServer {
  /** HOST:PORT actually bound. */
  readonly address: string
  /** The unix socket served, if any. */
  readonly socketPath?: string
  close(): Promise<void>
}

export { API_PREFIX }

export async function startApiServer (peer: ShoalPeer, init: ApiServerInit): Promise<ApiServer> {
  const { host, port } = parseApiAddress(init.address)
  const log = init.logger.forComponent('shoal:api')
  const app = Fastify({ logger: false, forceCloseConnections: true })
  const expected = Buffer.from(`Bearer ${init.token}`)
  let boundAddress: string | null = null
  // the dashboard: its files, its login, and its session cookie (ui-routes.ts)
  const ui = registerUiRoutes(app, peer, { address: () => boundAddress, logger: init.logger })

  app.addHook('onRequest', async (request, reply) => {
    const given = Buffer.from(request.headers.authorization ?? '')
    if (given.length === expected.length && timingSafeEqual(given, expected)) {
      ui.markBearer(request)
      return
    }
    if (request.headers.authorization == null) {
      const verdict = ui.authorize(request)
      if (verdict.allow) return
      if (verdict.refusal.status === 403) {
        return reply.code(403).send({ error: { name: verdict.refusal.name, message: verdict.refusal.message, exitCode: 1 } })
      }
    }
    return reply.code(401).header('www-authenticate', 'Bearer').send({
      error: { name: 'UnauthorizedError', message: 'missing or wrong API token (see <repo>/api.token)' }
    })
  })

  app.setErrorHandler(async (err, _request, reply) => {
    if (isShoalError(err)) {
      return reply.code(statusOf(err)).send({ error: { name: err.name, message: err.message, exitCode: err.exitCode } })
    }
    // an AbortSignal.timeout() that fired inside a lookup or a dial (a
    // DOMException, or libp2p's own class): a timeout, not a crash; such
    // errors from outside Shoal share only their name
    if ((err as Error).name === 'TimeoutError') {
      return reply.code(504).send({ error: { name: 'TimeoutError', message: `timed out: ${(err as Error).message}`, exitCode: 1 } })
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500
    if (status >= 500) log.error('API error - %e', err)
    return reply.code(status).send({ error: { name: (err as Error).name ?? 'Error', message: (err as Error).message } })
  })

  // an unknown route answers in the API's error shape, like every other error
  app.setNotFoundHandler(async (request, reply) => {
    return reply.code(404).send({ error: { name: 'NotFoundError', message: `no such API route: ${request.method} ${request.url.split('?')[0]}`, exitCode: 2 } })
  })

  registerRoutes(app, peer, { address: () => boundAddress, onShutdownRequested: init.onShutdownRequested })
  registerContentRoutes(app, peer, API_PREFIX)
  registerRoutingRoutes(app, peer, API_PREFIX)

  try {
    await app.listen({ host, port })
  } catch (err) {
    // the listen error is the one to report; closing only releases the rest
    await app.close().catch(() => {})
    if ((err as { code?: string }).code === 'EADDRINUSE') {
      throw new AddressInUseError(`API address ${init.address} is already in use`)
    }
    throw err
  }
  const bound = app.server.address()
  const address = typeof bound === 'object' && bound != null
    ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`
    : init.address
  boundAddress = address
  const socketPath = init.socketPath === false ? undefined : init.socketPath ?? path.join(peer.repo.path, REPO_FILES.apiSocket)
  let socketServer: http.Server | undefined
  try {
    if (socketPath != null) socketServer = await listenOnSocket(app, socketPath)
  } catch (err) {
    await app.close().catch(() => {})
    throw new ShoalError(`cannot serve the API on the unix socket ${socketPath}: ${(err as Error).message}`)
  }
  log('API listening on http://%s and %s', address, socketPath ?? 'no unix socket')
  return {
    address,
    socketPath,
    close: async () => {
      if (socketServer != null) {
        const closed = new Promise<void>(resolve => { socketServer!.close(() => { resolve() }) })
        socketServer.closeAllConnections()
        await closed
        await fs.rm(socketPath!, { force: true })
      }
      ui.close()
      await app.close()
    }
  }
}

/**
 * Serves the same routes on a unix socket. A socket file already there was
 * left by a daemon that died: the repo lock, taken before the API starts,
 * says no other daemon owns this repo, so it is removed.
 */
async function listenOnSocket (app: FastifyInstance, file: string): Promise<http.Server> {
  await fs.rm(file, { force: true })
  const server = http.createServer((request, reply) => { app.routing(request, reply) })
  await withSocketPath(file, async (socketPath) => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(socketPath, () => {
        server.off('error', reject)
        resolve()
      })
    })
  })
  await fs.chmod(file, 0o600)
  return server
}


interface RouteContext {
  /** HOST:PORT bound, once listening. */
  address: () => string | null
  onShutdownRequested: () => void
}

function registerRoutes (app: FastifyInstance, peer: ShoalPeer, context: RouteContext): void {
  app.get(`${API_PREFIX}/id`, async () => ({
    peerId: peer.peerId.toString(),
    multiaddrs: peer.multiaddrs(),
    agentVersion: AGENT_VERSION,
    protocols: peer.libp2p.getProtocols()
  }))

  app.get(`${API_PREFIX}/peers`, async () => ({ peers: peer.peers() }))

  app.get(`${API_PREFIX}/status`, async (): Promise<StatusResponse> => ({ ...peer.status(), api: context.address() }))

  app.get<{ Querystring: { key?: string } }>(`${API_PREFIX}/dht/closest-peers`, async (request) => {
    const key = request.query.key
    if (key == null || key === '') throw new InvalidInputError('query parameter "key" (a CID) is required')
    let cid: CID
    try {
      cid = CID.parse(key)
    } catch {
      throw new InvalidInputError(`"${key}" is not a valid CID`)
    }
    // the overlay counts this peer among the responsible when it is one:
    // one more, so the other peers are the lookup's whole answer
    const k = peer.repo.config.dht.kBucketSize
    const found = await peer.overlay.lookup(cid.multihash.bytes, k + 1, { signal: AbortSignal.timeout(30_000) })
    const self = peer.peerId.toString()
    const result: ClosestPeersResult = { peers: found.responsible.filter(id => id !== self).slice(0, k), hops: found.hops, queried: found.messages, ms: found.ms }
    return result
  })

  app.get(`${API_PREFIX}/dht/routing-table`, async () => ({ peers: peer.routingTablePeers() }))

  app.post(`${API_PREFIX}/dht/refresh`, async () => {
    peer.refreshRouting()
    return { routingTableSize: peer.routingTableSize(), refreshing: peer.isBootstrapping }
  })

  app.post<{ Body: { multiaddrs?: unknown, successors?: unknown, fingers?: unknown } }>(`${API_PREFIX}/dht/join`, async (request) => {
    const list = request.body?.multiaddrs
    const successors = request.body?.successors
    if (successors !== undefined && typeof successors !== 'boolean') throw new InvalidInputError('body field "successors" must be true or false')
    if (!Array.isArray(list)) throw new InvalidInputError('body field "multiaddrs" (an array of multiaddrs with /p2p/<peer id>) is required')
    list.forEach((ma, i) => {
      const problem = typeof ma === 'string' ? multiaddrProblem(ma, true) : 'must be a multiaddr string'
      if (problem != null) throw new InvalidInputError(`multiaddrs[${i}] ${problem}`)
    })
    const fingers = request.body?.fingers
    if (fingers !== undefined && (!Array.isArray(fingers) || successors !== true)) throw new InvalidInputError('body field "fingers" must be an array of multiaddrs, and comes only with "successors": true')
    ;(fingers ?? []).forEach((ma: unknown, i: number) => {
      const problem = typeof ma === 'string' ? multiaddrProblem(ma, true) : 'must be a multiaddr string'
      if (problem != null) throw new InvalidInputError(`fingers[${i}] ${problem}`)
    })
    const result = await peer.join(list as string[], { successors: successors === true, fingers: fingers as string[] | undefined })
    return { ...result, routingTableSize: peer.routingTableSize() }
  })

  // stop this peer (the daemon exits; in a swarm host only this peer stops)
  app.post(`${API_PREFIX}/shutdown`, async (_request, reply) => {
    reply.raw.once('finish', () => { setImmediate(context.onShutdownRequested) })
    return { stopping: true, peerId: peer.peerId.toString() }
  })

  app.get('/metrics', async (_request, reply) => {
    const registry = peer.metricsRegistry
    if (registry == null) return reply.code(404).send({ error: { name: 'NotFoundError', message: 'metrics are disabled on this peer' } })
    return reply.header('content-type', registry.contentType).send(await registry.metrics())
  })
}

/** HTTP status for an error Shoal raised on purpose. */
function statusOf (err: ShoalError): number {
  if (err.exitCode === 2) return 400
  if (err instanceof ContentNotFoundError || err instanceof BlockNotFoundError) return 404
  if (err instanceof QuotaExceededError || err instanceof DiskFullError) return 507
  if (err instanceof TimeoutError) return 504
  // a DAG that breaks Shoal's bounds: what was asked for cannot be served
  if (err instanceof InvalidDagError) return 422
  return 500
}
