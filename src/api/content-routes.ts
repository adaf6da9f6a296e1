/**
 * Content routes of the control API: share (import), list, read (with HTTP
 * Range), remove, garbage-collect and verify. Listed in docs/api.md.
 */
import { removeContent } from '../peer/remove.ts'
import { statContent, type StatResult } from '../peer/stat.ts'
import path from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { parseCid } from '../content/cid.ts'
import { InvalidInputError } from '../errors.ts'
import type { FetchProgress, FetchResult } from '../exchange/fetcher.ts'
import type { ShoalPeer } from '../peer/peer.ts'
import type { PeerShareResult, ShareProgressEvent } from '../peer/share.ts'
import type { ShareResult } from '../store/content-store.ts'
import { parseByteSize } from '../utils/bytes.ts'

/** What `share` answers: the import, and the replicas placed. */
export interface ShareResponse extends Omit<ShareResult, 'cid'> {
  cid: string
  replicas: { target: number, min: number, complete: boolean }
  placement: {
    /** DHT lookups, time finding closest peers vs moving bytes, bytes moved. */
    lookups: number
    planMs: number
    pushMs: number
    bytesPushed: number
    /** Root announced as a provider record. */
    announced: boolean
    refused: Record<string, number>
    /** Wall time of the import and of the placement (ms). */
    importMs: number
    placeMs: number
  }
}

/** `shoal stat`: the DAG and who holds each block now. */
export type StatResponse = StatResult

interface ShareQuery {
  chunkSize?: string
  name?: string
  replicas?: string
}

interface ShareBody {
  path?: unknown
  chunkSize?: unknown
  name?: unknown
  replicas?: unknown
}

const PROGRESS_INTERVAL_MS = 100

/**
 * A progress line of `share`: `phase` says which moved (bytes imported, or
 * a copy placed); every line carries both (placement runs during the
 * import), and `imported` once the import is over.
 */
export type ShareProgress = { phase: 'import' | 'place', bytes: number, done: number, total: number, imported: boolean }

export function registerContentRoutes (app: FastifyInstance, peer: ShoalPeer, prefix: string): void {
  // An uploaded file is handed to the importer as the raw request stream:
  // never buffered whole, never subject to the JSON body limit.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => { done(null, payload) })

  app.post<{ Querystring: ShareQuery, Body: ShareBody | Readable }>(`${prefix}/content`, async (request, reply) => {
    const isUpload = request.body instanceof Readable
    const fields: ShareBody = isUpload ? request.query : (request.body as ShareBody ?? {})
    const chunkSize = optionalSize(fields.chunkSize, 'chunkSize')
    const replicas = optionalInt(fields.replicas, 'replicas', 0, 64) ?? peer.repo.config.replicas
    const name = typeof fields.name === 'string' && fields.name !== '' ? fields.name : undefined
    const controller = new AbortController()
    // The client went away before the import finished: stop importing.
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) controller.abort(new InvalidInputError('the client closed the request')) })
    const run = async (onProgress?: (progress: ShareProgress) => void): Promise<ShareResponse> => {
      if (!isUpload && (typeof fields.path !== 'string' || fields.path === '')) {
        throw new InvalidInputError('"path" (a file the daemon can read) or an application/octet-stream body is required')
      }
      const source = isUpload ? { stream: request.body as Readable } : { path: fields.path as string }
      const result = await peer.share(source, {
        chunkSize,
        name,
        replicas,
        signal: controller.signal,
        onProgress: onProgress == null ? undefined : event => { onProgress(progressLine(event)) }
      })
      return shareResponse(result)
    }
    if (!wantsProgress(request)) return run()
    return streamProgress(reply, run)
  })

  app.get(`${prefix}/content`, async () => ({
    holdings: await peer.content.list(),
    store: peer.content.usage()
  }))

  const read = async (request: FastifyRequest<{ Params: { cid: string }, Querystring: { local?: string } }>, reply: FastifyReply): Promise<unknown> => {
    const cid = parseCid(request.params.cid)
    const localOnly = request.query.local === 'true' || request.query.local === '1'
    const controller = new AbortController()
    reply.raw.on('close', () => { controller.abort() })
    // held whole here: read from the store; otherwise read while it downloads,
    // the requested range first
    const held = localOnly || (await peer.content.list(cid)).some(h => h.reason === 'shared' || h.reason === 'fetched')
    const source = held ? undefined : await peer.fetcher.stream(cid, controller.signal)
    reply.raw.on('close', () => { source?.close() })
    const size = source?.size ?? await peer.content.size(cid)
    reply.header('accept-ranges', 'bytes').header('etag', `"${cid.toString()}"`).type('application/octet-stream')
    const range = parseRange(request.headers.range, size)
    if (range === 'unsatisfiable') {
      source?.close()
      return reply.code(416).header('content-range', `bytes */${size}`).send()
    }
    const { offset, length } = range ?? { offset: 0, length: size }
    if (range != null) reply.code(206).header('content-range', `bytes ${offset}-${offset + length - 1}/${size}`)
    reply.header('content-length', length)
    if (request.method === 'HEAD') {
      // an empty stream: fastify keeps the content-length set above
      source?.close()
      return reply.send(Readable.from([]))
    }
    const bytes = source != null
      ? source.read(offset, length)
      : peer.content.read(cid, { offset, length, signal: controller.signal })
    return reply.send(Readable.from(bytes))
  }
  // fastify answers HEAD through this route too (headers only)
  app.get<{ Params: { cid: string }, Querystring: { local?: string } }>(`${prefix}/content/:cid`, read)

  app.get<{ Params: { cid: string }, Querystring: { replicas?: string } }>(`${prefix}/content/:cid/stat`, async (request): Promise<StatResponse> => {
    const root = parseCid(request.params.cid)
    const k = optionalInt(request.query.replicas, 'replicas', 1, 64) ?? peer.repo.config.replicas
    // held here or not (src/peer/stat.ts); nobody answering for the CID in 30 s is a 404
    return statContent({ content: peer.content, fetcher: peer.fetcher, overlay: peer.overlay, placement: peer.placement }, root, k, { signal: AbortSignal.timeout(60_000), timeoutMs: 30_000 })
  })

  app.delete<{ Params: { cid: string } }>(`${prefix}/content/:cid`, async (request) => {
    // its blocks this peer is among the k closest of go to the next closest first (src/peer/remove.ts)
    return removeContent({ content: peer.content, placement: peer.placement, replicas: peer.repo.config.replicas, log: peer.logger.forComponent('shoal:rm') }, parseCid(request.params.cid), AbortSignal.timeout(300_000))
  })

  app.post<{ Body: { cid?: unknown, path?: unknown, force?: unknown, timeoutSeconds?: unknown } }>(`${prefix}/fetch`, async (request, reply) => {
    const body = request.body ?? {}
    if (typeof body.cid !== 'string') throw new InvalidInputError('"cid" is required')
    const cid = parseCid(body.cid)
    if (body.path != null && (typeof body.path !== 'string' || !path.isAbsolute(body.path))) throw new InvalidInputError('"path" must be an absolute file path')
    const timeoutSeconds = optionalInt(body.timeoutSeconds, 'timeoutSeconds', 1, 86_400) ?? 60
    const controller = new AbortController()
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) controller.abort(new InvalidInputError('the client closed the request')) })
    const run = async (onProgress?: (progress: FetchProgress) => void): Promise<FetchResult> => peer.fetcher.fetch(cid, {
      signal: controller.signal,
      timeoutMs: timeoutSeconds * 1000,
      output: typeof body.path === 'string' ? { path: body.path, force: body.force === true } : undefined,
      onProgress
    })
    if (!wantsProgress(request)) return run()
    return streamProgress(reply, run)
  })

  app.post(`${prefix}/repair`, async () => peer.repairNow(AbortSignal.timeout(300_000)))

  app.post(`${prefix}/store/gc`, async () => peer.content.gc())

  app.post<{ Querystring: { repair?: string } }>(`${prefix}/store/verify`, async (request) => {
    return peer.content.verify({ repair: request.query.repair === 'true' || request.query.repair === '1' })
  })
}

function progressLine (event: ShareProgressEvent): ShareProgress {
  const { bytes, done, total, imported } = event
  return { phase: event.name === 'share:imported' ? 'import' : 'place', bytes, done, total, imported }
}

function shareResponse (result: PeerShareResult): ShareResponse {
  const { cid, placement, importMs, placeMs, ...imported } = result
  return {
    cid: cid.toString(),
    ...imported,
    replicas: { target: placement.target, min: placement.min, complete: placement.complete },
    placement: {
      lookups: placement.lookups,
      planMs: placement.planMs,
      pushMs: placement.pushMs,
      bytesPushed: placement.bytesPushed,
      announced: placement.announced,
      refused: placement.refused,
      importMs,
      placeMs
    }
  }
}

function wantsProgress (request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').includes('application/x-ndjson')
}

/**
 * Runs `work` while streaming NDJSON: `{"progress":{...}}` lines at
 * most every 100 ms (the last one held back always written), then one
 * `{"result":...}` or `{"error":...}` line.
 */
async function streamProgress<T, P> (reply: FastifyReply, work: (onProgress: (progress: P) => void) => Promise<T>): Promise<FastifyReply> {
  const out = new PassThrough()
  let last = 0
  // the latest line held back by the rate limit: written before the end, so the last progress is never lost
  let held: P | undefined
  const line = (value: unknown): void => { out.write(JSON.stringify(value) + '\n') }
  const flush = (): void => { if (held != null) line({ progress: held }); held = undefined }
  work(progress => {
    const now = Date.now()
    if (now - last < PROGRESS_INTERVAL_MS) { held = progress; return }
    last = now
    held = undefined
    line({ progress })
  }).then(result => { flush(); line({ result }) }, (err: Error & { exitCode?: number }) => {
    flush()
    line({ error: { name: err.name, message: err.message, exitCode: err.exitCode ?? 1 } })
  }).finally(() => out.end())
  return reply.type('application/x-ndjson').send(out)
}

/** One `bytes=a-b` range; undefined for none or several (answered whole). */
export function parseRange (header: string | undefined, size: number): { offset: number, length: number } | 'unsatisfiable' | undefined {
  if (header == null) return undefined
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (match == null || (match[1] === '' && match[2] === '')) return undefined
  let start: number
  let end: number
  if (match[1] === '') {
    // suffix range: the last N bytes
    const n = Number(match[2])
    if (n === 0) return 'unsatisfiable'
    start = Math.max(0, size - n)
    end = size - 1
  } else {
    start = Number(match[1])
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1)
    if (end < start && match[2] !== '') return undefined
  }
  if (start >= size) return 'unsatisfiable'
  return { offset: start, length: end - start + 1 }
}

function optionalSize (value: unknown, field: string): number | undefined {
  if (value == null || value === '') return undefined
  const n = typeof value === 'number' ? value : parseByteSize(String(value))
  if (n == null) throw new InvalidInputError(`"${field}" must be a byte count or a size like "256KiB", got ${JSON.stringify(value)}`)
  return n
}

function optionalInt (value: unknown, field: string, min: number, max: number): number | undefined {
  if (value == null || value === '') return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidInputError(`"${field}" must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
  return n
}
