/**
 * Client for a daemon's control API, found through its repo folder:
 * `<repo>/api` holds HOST:PORT, `<repo>/api.token` the bearer token.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { API_REQUEST_TIMEOUT_MS, REPO_FILES } from '../constants.ts'
import { ApiError, DaemonNotRunningError, InvalidInputError, ShoalError } from '../errors.ts'
import type { ClosestPeersResult } from '../peer/closest-peers.ts'
import type { ConnectedPeer, PeerStatus } from '../peer/peer.ts'
import { API_PREFIX } from './server.ts'

export interface IdResult {
  peerId: string
  multiaddrs: string[]
  agentVersion: string
  protocols: string[]
}

export interface RequestOptions {
  signal?: AbortSignal
  timeoutMs?: number
}

export class ApiClient {
  readonly baseUrl: string
  private readonly token: string
  /** Named in "no daemon" errors when known. */
  private readonly repoPath?: string

  constructor (address: string, token: string, repoPath?: string) {
    this.baseUrl = `http://${address}`
    this.token = token
    this.repoPath = repoPath
  }

  /** Reads the daemon's address and token from its repo; fails if no daemon runs. */
  static async fromRepo (repoPath: string): Promise<ApiClient> {
    let address: string
    try {
      address = (await fs.readFile(path.join(repoPath, REPO_FILES.apiAddress), 'utf8')).trim()
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'ENOENT') throw notRunning(repoPath)
      if (code === 'ENOTDIR') throw new InvalidInputError(`repo path ${repoPath} is not a directory`)
      throw err
    }
    let token: string
    try {
      token = (await fs.readFile(path.join(repoPath, REPO_FILES.apiToken), 'utf8')).trim()
    } catch (err) {
      throw new ShoalError(`cannot read API token ${path.join(repoPath, REPO_FILES.apiToken)}: ${(err as Error).message}`)
    }
    return new ApiClient(address, token, repoPath)
  }

  async request<T> (method: string, route: string, options: RequestOptions = {}): Promise<T> {
    const signal = AbortSignal.any([
      AbortSignal.timeout(options.timeoutMs ?? API_REQUEST_TIMEOUT_MS),
      ...(options.signal != null ? [options.signal] : [])
    ])
    let response: Response
    try {
      response = await fetch(this.baseUrl + route, {
        method,
        headers: { authorization: `Bearer ${this.token}` },
        signal
      })
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      if ((err as Error).name === 'TimeoutError') throw new ApiError(`the daemon did not answer ${method} ${route} in time`, 0)
      // a stale <repo>/api file from a daemon that died: nobody listens there
      throw this.repoPath != null ? notRunning(this.repoPath) : new DaemonNotRunningError(`no Shoal daemon answers at ${this.baseUrl}`)
    }
    const text = await response.text()
    if (!response.ok) {
      let message = text
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text
      } catch {}
      if (response.status === 400) throw new InvalidInputError(message)
      throw new ApiError(`daemon: ${message} (HTTP ${response.status})`, response.status)
    }
    const type = response.headers.get('content-type') ?? ''
    return (type.includes('application/json') ? JSON.parse(text) : text) as T
  }

  async id (options?: RequestOptions): Promise<IdResult> {
    return this.request('GET', `${API_PREFIX}/id`, options)
  }

  async peers (options?: RequestOptions): Promise<ConnectedPeer[]> {
    return (await this.request<{ peers: ConnectedPeer[] }>('GET', `${API_PREFIX}/peers`, options)).peers
  }

  async status (options?: RequestOptions): Promise<PeerStatus> {
    return this.request('GET', `${API_PREFIX}/status`, options)
  }

  async closestPeers (cid: string, options?: RequestOptions): Promise<ClosestPeersResult> {
    return this.request('GET', `${API_PREFIX}/dht/closest-peers?key=${encodeURIComponent(cid)}`, options)
  }

  async refreshRouting (options?: RequestOptions): Promise<{ routingTableSize: number, refreshing: boolean }> {
    return this.request('POST', `${API_PREFIX}/dht/refresh`, options)
  }

  /** Asks the peer to stop (a daemon exits; a swarm host stops only this peer). */
  async shutdown (options?: RequestOptions): Promise<{ stopping: boolean, peerId: string }> {
    return this.request('POST', `${API_PREFIX}/shutdown`, options)
  }

  async metrics (options?: RequestOptions): Promise<string> {
    return this.request('GET', '/metrics', options)
  }
}

function notRunning (repoPath: string): DaemonNotRunningError {
  return new DaemonNotRunningError(`no Shoal daemon is running on repo ${repoPath} (start one with "shoal daemon")`)
}
