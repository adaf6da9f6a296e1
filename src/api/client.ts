/**
 * Client for a daemon's control API, found through its repo folder: it
 * talks over the unix socket `<repo>/api.sock` with the bearer token from
 * `<repo>/api.token`. The token is never sent to the TCP address in
 * `<repo>/api` (a file a crashed daemon leaves behind, naming a port anyone
 * may have bound since); that address is for browsers and scripts, and for
 * a client built with `new ApiClient(address, token)` on purpose.
 */
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { API_PREFIX, API_REQUEST_TIMEOUT_MS, REPO_FILES } from '../constants.ts'
import { ApiError, DaemonNotRunningError, InvalidInputError, ShoalError } from '../errors.ts'
import type { ConnectedPeer } from '../peer/peer.ts'
import type { BlockstoreUsage } from '../store/blockstore.ts'
import type { GcResult, RemoveResult, VerifyResult } from '../store/content-store.ts'
import type { Holding } from '../store/holdings.ts'
import type { FetchProgress, FetchResult } from '../exchange/fetcher.ts'
import type { RepairReport } from '../placement/repairer.ts'
import type { ShareProgress, ShareResponse, StatResponse } from './content-routes.ts'
import type { LookupResponse, MaintenanceResponse, RoutingResponse } from './routing-routes.ts'
import type { ClosestPeersResult, StatusResponse } from './server.ts'
import { connectSocket } from './api-socket.ts'

export interface ShareRequest {
  /** A file the daemon reads itself... */
  path?: string
  /** ...or the file's bytes, streamed to the daemon. */
  stream?: AsyncIterable<Uint8Array>
  name?: string
  chunkSize?: number
  replicas?: number
  /** Progress of the import, then of the placement (~10 reports a second). */
  onProgress?: (progress: ShareProgress) => void
  signal?: AbortSignal
}

export interface FetchRequest {
  /** Absolute path of the output file (written by the daemon). */
  path?: string
  force?: boolean
  /** Give up when no block has arrived for this long. */
  timeoutSeconds?: number
  onProgress?: (progress: FetchProgress) => void
  signal?: AbortSignal
}

export interface IdResult {
  peerId: string
  multiaddrs: string[]
  agentVersion: string
  protocols: string[]
}

export interface RequestOptions {
  signal?: AbortSignal
  /** Give up after this long; 0 = no limit (long transfers). */
  timeoutMs?: number
}

export interface SendOptions extends RequestOptions {
  headers?: Record<string, string>
  body?: string | AsyncIterable<Uint8Array>
}

export interface ApiClientOptions {
  /** Send every request over this unix socket instead of TCP to the address. */
  socketPath?: string
}

export class ApiClient {
  /** The API's TCP URL (what a browser or script would use). */
  readonly baseUrl: string
  /** The unix socket requests go over, when the client was made for one. */
  readonly socketPath?: string
  private readonly token: string
  /** Named in "no daemon" errors when known. */
  private readonly repoPath?: string

  constructor (address: string, token: string, repoPath?: string, options: ApiClientOptions = {}) {
    this.baseUrl = `http://${address}`
    this.token = token
    this.repoPath = repoPath
    this.socketPath = options.socketPath
  }

  /** Finds the daemon's socket and token in its repo; fails if no daemon runs. */
  static async fromRepo (repoPath: string): Promise<ApiClient> {
    const socketPath = path.join(repoPath, REPO_FILES.apiSocket)
    try {
      if (!(await fs.stat(socketPath)).isSocket()) throw notRunning(repoPath)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'ENOENT') throw notRunning(repoPath)
      if (code === 'ENOTDIR') throw new InvalidInputError(`repo path ${repoPath} is not a directory`)
      throw err
    }
    // informational only (baseUrl): requests go over the socket
    const address = (await fs.readFile(path.join(repoPath, REPO_FILES.apiAddress), 'utf8').catch(() => '')).trim()
    let token: string
    try {
      token = (await fs.readFile(path.join(repoPath, REPO_FILES.apiToken), 'utf8')).trim()
    } catch (err) {
      throw new ShoalError(`cannot read API token ${path.join(repoPath, REPO_FILES.apiToken)}: ${(err as Error).message}`)
    }
    return new ApiClient(address === '' ? 'localhost' : address, token, repoPath, { socketPath })
  }

  /**
   * Sends a request and returns the response once its status is known to be
   * a success; an error status becomes the daemon's own error (same message,
   * same exit code) when it sent one.
   */
  async send (method: string, route: string, options: SendOptions = {}): Promise<Response> {
    const timeoutMs = options.timeoutMs ?? API_REQUEST_TIMEOUT_MS
    const signal = AbortSignal.any([
      ...(timeoutMs > 0 ? [AbortSignal.timeout(timeoutMs)] : []),
      ...(options.signal != null ? [options.signal] : [])
    ])
    const headers = { authorization: `Bearer ${this.token}`, ...options.headers }
    let response: Response
    try {
      response = this.socketPath != null
        ? await requestOverSocket(this.socketPath, method, route, headers, options.body, signal)
        : await fetch(this.baseUrl + route, {
          method,
          headers,
          body: options.body as RequestInit['body'],
          signal,
          ...(options.body != null && typeof options.body !== 'string' ? { duplex: 'half' } : {})
        } as RequestInit)
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      if (signal.aborted) throw new ApiError(`the daemon did not answer ${method} ${route} in time`, 0)
      if ((err as { code?: string }).code === 'EACCES') throw new ShoalError(`cannot connect to the daemon's API socket ${this.socketPath}: permission denied (it belongs to another user)`)
      const code = (err as { code?: string }).code
      // a daemon that is there but dropped the request (out of open files, it accepts and closes at once)
      if (code != null && !NOBODY_LISTENS.has(code)) throw new ApiError(`the daemon${this.repoPath != null ? ` on repo ${this.repoPath}` : ''} dropped the connection before answering ${method} ${route} (${code})`, 0)
      // a socket (or a <repo>/api address) a daemon that died left behind: nobody listens there
      throw this.repoPath != null ? notRunning(this.repoPath) : new DaemonNotRunningError(`no Shoal daemon answers at ${this.socketPath ?? this.baseUrl}`)
    }
    if (!response.ok) throw errorFromResponse(response.status, await response.text())
    return response
  }

  async request<T> (method: string, route: string, options: SendOptions = {}): Promise<T> {
    const response = await this.send(method, route, options)
    const text = await response.text()
    const type = response.headers.get('content-type') ?? ''
    return (type.includes('application/json') ? JSON.parse(text) : text) as T
  }

  async id (options?: RequestOptions): Promise<IdResult> {
    return this.request('GET', `${API_PREFIX}/id`, options)
  }

  async peers (options?: RequestOptions): Promise<ConnectedPeer[]> {
    return (await this.request<{ peers: ConnectedPeer[] }>('GET', `${API_PREFIX}/peers`, options)).peers
  }

  async status (options?: RequestOptions): Promise<StatusResponse> {
    return this.request('GET', `${API_PREFIX}/status`, options)
  }

  async closestPeers (cid: string, options?: RequestOptions): Promise<ClosestPeersResult> {
    return this.request('GET', `${API_PREFIX}/dht/closest-peers?key=${encodeURIComponent(cid)}`, options)
  }

  /** This peer's routing state as its overlay arranges it (`GET /api/v1/routing`). */
  async routing (options?: RequestOptions): Promise<RoutingResponse> {
    return this.request('GET', `${API_PREFIX}/routing`, options)
  }

  /** One lookup through the overlay, with its path and the k responsible peers (`GET /api/v1/lookup`). */
  async lookup (key: string, options: RequestOptions & { replicas?: number } = {}): Promise<LookupResponse> {
    const query = new URLSearchParams({ key, ...(options.replicas != null ? { replicas: String(options.replicas) } : {}) })
    return this.request('GET', `${API_PREFIX}/lookup?${query}`, options)
  }

  /** Pauses (true) or restarts the overlay's periodic maintenance: an experiment control (`POST /api/v1/routing/maintenance`). */
  async pauseMaintenance (paused: boolean, options?: RequestOptions): Promise<MaintenanceResponse> {
    return this.request('POST', `${API_PREFIX}/routing/maintenance`, { ...options, body: JSON.stringify({ paused }), headers: { 'content-type': 'application/json' } })
  }

  async refreshRouting (options?: RequestOptions): Promise<{ routingTableSize: number, refreshing: boolean }> {
    return this.request('POST', `${API_PREFIX}/dht/refresh`, options)
  }

  /**
   * Connects the peer to these peers (multiaddrs with /p2p/<id>); answers
   * when every dial has finished. `successors`: they are its successors in
   * ring order (see JoinOptions in src/routing/index.ts).
   */
  async join (multiaddrs: string[], options?: RequestOptions & { successors?: boolean, fingers?: string[] }): Promise<{ connected: number, failed: number, routingTableSize: number }> {
    const body = { multiaddrs, ...(options?.successors === true ? { successors: true } : {}), ...(options?.fingers != null ? { fingers: options.fingers } : {}) }
    return this.request('POST', `${API_PREFIX}/dht/join`, { ...options, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  }

  /** Asks the peer to stop (a daemon exits; a swarm host stops only this peer). */
  async shutdown (options?: RequestOptions): Promise<{ stopping: boolean, peerId: string }> {
    return this.request('POST', `${API_PREFIX}/shutdown`, options)
  }

  async metrics (options?: RequestOptions): Promise<string> {
    return this.request('GET', '/metrics', options)
  }

  /** Imports a file into the daemon's store and records it as shared. */
  async share (req: ShareRequest): Promise<ShareResponse> {
    const fields = {
      ...(req.chunkSize != null ? { chunkSize: String(req.chunkSize) } : {}),
      ...(req.replicas != null ? { replicas: String(req.replicas) } : {}),
      ...(req.name != null ? { name: req.name } : {})
    }
    const accept = req.onProgress != null ? 'application/x-ndjson' : 'application/json'
    const response = req.stream != null
      ? await this.send('POST', `${API_PREFIX}/content?${new URLSearchParams(fields)}`, {
        body: req.stream, headers: { 'content-type': 'application/octet-stream', accept }, signal: req.signal, timeoutMs: 0
      })
      : await this.send('POST', `${API_PREFIX}/content`, {
        body: JSON.stringify({ ...fields, path: req.path }), headers: { 'content-type': 'application/json', accept }, signal: req.signal, timeoutMs: 0
      })
    if (req.onProgress == null) return await response.json() as ShareResponse
    return readProgress(response, req.onProgress)
  }

  async stat (cid: string, replicas?: number, options?: RequestOptions): Promise<StatResponse> {
    return this.request('GET', `${API_PREFIX}/content/${encodeURIComponent(cid)}/stat${replicas != null ? `?replicas=${replicas}` : ''}`, { timeoutMs: 90_000, ...options })
  }

  /**
   * Has the daemon fetch a file from the peers that hold it, into its store
   * and, with `path` (absolute), into that file.
   */
  async fetch (cid: string, req: FetchRequest = {}): Promise<FetchResult> {
    const accept = req.onProgress != null ? 'application/x-ndjson' : 'application/json'
    const response = await this.send('POST', `${API_PREFIX}/fetch`, {
      body: JSON.stringify({ cid, path: req.path, force: req.force, timeoutSeconds: req.timeoutSeconds }),
      headers: { 'content-type': 'application/json', accept },
      signal: req.signal,
      timeoutMs: 0
    })
    if (req.onProgress == null) return await response.json() as FetchResult
    return readProgress(response, req.onProgress)
  }

  /** Runs one repair pass on the daemon now. */
  async repair (options?: RequestOptions): Promise<RepairReport> {
    return this.request('POST', `${API_PREFIX}/repair`, { timeoutMs: 0, ...options })
  }

  async holdings (options?: RequestOptions): Promise<{ holdings: Holding[], store: BlockstoreUsage }> {
    return this.request('GET', `${API_PREFIX}/content`, options)
  }

  /**
   * The file's bytes as a response stream (optionally a byte range). Not
   * held here, the daemon fetches it while streaming, unless `local`.
   */
  async read (cid: string, options: RequestOptions & { offset?: number, length?: number, local?: boolean } = {}): Promise<Response> {
    const headers: Record<string, string> = {}
    if (options.offset != null || options.length != null) {
      const start = options.offset ?? 0
      headers.range = `bytes=${start}-${options.length != null ? start + options.length - 1 : ''}`
    }
    return this.send('GET', `${API_PREFIX}/content/${encodeURIComponent(cid)}${options.local === true ? '?local=true' : ''}`, { ...options, headers, timeoutMs: options.timeoutMs ?? 0 })
  }

  async remove (cid: string, options?: RequestOptions): Promise<RemoveResult> {
    return this.request('DELETE', `${API_PREFIX}/content/${encodeURIComponent(cid)}`, { timeoutMs: 0, ...options })
  }

  async gc (options?: RequestOptions): Promise<GcResult> {
    return this.request('POST', `${API_PREFIX}/store/gc`, { timeoutMs: 0, ...options })
  }

  async verify (repair: boolean, options?: RequestOptions): Promise<VerifyResult> {
    return this.request('POST', `${API_PREFIX}/store/verify?repair=${repair}`, { timeoutMs: 0, ...options })
  }
}

/** Reads an NDJSON progress stream to its result line. */
async function readProgress<T, P> (response: Response, onProgress: (progress: P) => void): Promise<T> {
  const decoder = new TextDecoder()
  let buffered = ''
  const pieces = (response.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
  while (true) {
    let next: IteratorResult<Uint8Array>
    try {
      next = await pieces.next()
    } catch (err) {
      // the daemon died or closed the connection in the middle of the answer
      throw new ApiError(`the connection to the daemon broke off before the result (${(err as Error).message})`, 0, 1, undefined, { cause: err })
    }
    if (next.done === true) break
    const piece = next.value
    buffered += decoder.decode(piece, { stream: true })
    let newline: number
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      if (line === '') continue
      const message = JSON.parse(line) as { progress?: P, result?: T, error?: { name: string, message: string, exitCode: number } }
      if (message.progress != null) onProgress(message.progress)
      if (message.result != null) return message.result
      if (message.error != null) throw errorFromResponse(500, JSON.stringify({ error: message.error }))
    }
  }
  throw new ApiError('the daemon ended the response without a result', 0)
}

/**
 * One HTTP request over the unix socket, answered as fetch() would: a
 * Response whose body streams. Resolves once the status and headers are in.
 */
async function requestOverSocket (socketPath: string, method: string, route: string, headers: Record<string, string>, body: SendOptions['body'], signal: AbortSignal): Promise<Response> {
  signal.throwIfAborted()
  const request = http.request({
    method,
    path: route,
    headers: { host: 'localhost', ...headers },
    // no agent: one connection per request, closed after it
    createConnection: () => connectSocket(socketPath),
    signal
  })
  const answered = new Promise<http.IncomingMessage>((resolve, reject) => {
    request.once('response', resolve)
    request.once('error', reject)
  })
  if (body == null || typeof body === 'string') {
    request.end(body)
  } else {
    // the daemon may answer (an error) before it has read the whole body
    pipeline(Readable.from(body), request).catch(() => {})
  }
  const incoming = await answered
  const responseHeaders = new Headers()
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (Array.isArray(value)) value.forEach(v => { responseHeaders.append(name, v) })
    else if (value != null) responseHeaders.set(name, value)
  }
  const status = incoming.statusCode ?? 500
  const noBody = method === 'HEAD' || status === 204 || status === 205 || status === 304
  if (noBody) incoming.resume()
  return new Response(noBody ? null : Readable.toWeb(incoming) as ReadableStream<Uint8Array>, {
    status,
    statusText: incoming.statusMessage,
    headers: responseHeaders
  })
}

/** The daemon's error, as the error it was on the daemon's side. */
export function errorFromResponse (status: number, text: string): ShoalError {
  let error: { name?: string, message?: string, exitCode?: number } | undefined
  try {
    error = (JSON.parse(text) as { error?: typeof error }).error
  } catch {}
  const message = error?.message ?? text
  if (error?.exitCode === 1 || error?.exitCode === 2) {
    return new ApiError(message, status, error.exitCode, error.name)
  }
  if (status === 400) return new InvalidInputError(message)
  return new ApiError(`daemon: ${message} (HTTP ${status})`, status)
}

/** Connection errors that mean no daemon listens on the socket or address. */
const NOBODY_LISTENS = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK'])

function notRunning (repoPath: string): DaemonNotRunningError {
  return new DaemonNotRunningError(`no Shoal daemon is running on repo ${repoPath} (start one with "shoal daemon")`)
}
