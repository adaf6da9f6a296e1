/**
 * Routing routes of the control API, the same on both overlays: this
 * peer's routing state (`GET /api/v1/routing`, a RoutingSnapshot) and one
 * lookup through the overlay with its path (`GET /api/v1/lookup`). Listed
 * in docs/api.md; `shoal routing`, `shoal lookup` and the dashboard read them.
 * And one experiment control: pausing the overlay's periodic maintenance
 * (`POST /api/v1/routing/maintenance`, bench/failure.ts).
 */
import type { FastifyInstance } from 'fastify'
import { parseCid } from '../content/cid.ts'
import { InvalidInputError, TimeoutError } from '../errors.ts'
import type { ShoalPeer } from '../peer/peer.ts'
import type { LookupHop, OverlayName, RoutingSnapshot } from '../routing/index.ts'

/** A lookup gives up after this long (the API answers 504). */
export const LOOKUP_TIMEOUT_MS = 30_000
/** The most responsible peers one lookup may ask for (`replicas`). */
export const MAX_LOOKUP_REPLICAS = 64
/** The longest hex key (bytes). */
export const MAX_KEY_BYTES = 64

/** `GET /api/v1/lookup`: one lookup, its path and the k responsible peers. */
export interface LookupResponse {
  /** The key as asked: a CID, or lower-case hex of key bytes. */
  key: string
  overlay: OverlayName
  /** Sequential round trips that decided the answer. */
  hops: number
  ms: number
  /** Queries sent. */
  messages: number
  /** Every query sent, in the order answered. */
  path: LookupHop[]
  /** The k responsible peers, closest first (Kademlia), the key's successor first (Chord). */
  responsible: string[]
}

export type RoutingResponse = RoutingSnapshot

/** `POST /api/v1/routing/maintenance`: whether the overlay's periodic maintenance is now paused. */
export interface MaintenanceResponse {
  overlay: OverlayName
  paused: boolean
}

/**
 * The bytes a lookup key stands for. An even-length string of hex digits
 * is the key's own bytes (1 to 64); anything else must be a CID, whose
 * key is its multihash bytes (what placement places a block under). A
 * base16 CID starts with `f` and has an odd length, so it stays a CID.
 */
export function parseLookupKey (text: string | undefined): { key: string, bytes: Uint8Array } {
  if (text == null || text === '') throw new InvalidInputError('query parameter "key" (a CID, or hex of the key bytes) is required')
  if (/^(?:[0-9a-fA-F]{2})+$/.test(text)) {
    if (text.length > MAX_KEY_BYTES * 2) throw new InvalidInputError(`a hex key is at most ${MAX_KEY_BYTES} bytes, got ${text.length / 2}`)
    return { key: text.toLowerCase(), bytes: Uint8Array.from(Buffer.from(text, 'hex')) }
  }
  let cid
  try {
    cid = parseCid(text)
  } catch {
    throw new InvalidInputError(`"${text}" is neither a CID nor hex of key bytes (an even number of hex digits)`)
  }
  return { key: cid.toString(), bytes: cid.multihash.bytes }
}

/** The key bytes of a `key` a lookup answered (a CID, or lower-case hex). */
export function keyBytes (key: string): Uint8Array {
  return parseLookupKey(key).bytes
}

/** `replicas`: 1 to 64, default the peer's config `replicas`. */
export function parseLookupReplicas (text: string | undefined, fallback: number): number {
  if (text == null || text === '') return fallback
  const k = Number(text)
  if (!/^\d+$/.test(text) || k < 1 || k > MAX_LOOKUP_REPLICAS) {
    throw new InvalidInputError(`"replicas" must be an integer 1 to ${MAX_LOOKUP_REPLICAS}, got "${text}"`)
  }
  return k
}

export function registerRoutingRoutes (app: FastifyInstance, peer: ShoalPeer, prefix: string): void {
  app.get(`${prefix}/routing`, async (): Promise<RoutingResponse> => peer.overlay.routing())

  app.post<{ Body: { paused?: unknown } }>(`${prefix}/routing/maintenance`, async (request): Promise<MaintenanceResponse> => {
    const paused = request.body?.paused
    if (typeof paused !== 'boolean') throw new InvalidInputError('body field "paused" (true or false) is required')
    peer.overlay.pauseMaintenance(paused)
    return { overlay: peer.overlay.name, paused }
  })

  app.get<{ Querystring: { key?: string, replicas?: string } }>(`${prefix}/lookup`, async (request): Promise<LookupResponse> => {
    const { key, bytes } = parseLookupKey(request.query.key)
    const k = parseLookupReplicas(request.query.replicas, peer.repo.config.replicas)
    const overlay = peer.overlay
    const signal = AbortSignal.timeout(LOOKUP_TIMEOUT_MS)
    let found
    try {
      found = await overlay.lookup(bytes, k, { signal })
    } catch (err) {
      if (signal.aborted) throw new TimeoutError(`the lookup of ${key} ran past ${LOOKUP_TIMEOUT_MS / 1000} s`)
      throw err
    }
    return { key, overlay: overlay.name, hops: found.hops, ms: found.ms, messages: found.messages, path: found.path, responsible: found.responsible }
  })
}
