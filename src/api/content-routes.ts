/**
 * Content routes of the control API: share (import), list, read (with HTTP
 * Range), remove, garbage-collect and verify. Listed in docs/api.md.
 */
import { PassThrough, Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { parseCid } from '../content/cid.ts'
import { InvalidInputError } from '../errors.ts'
import type { ShoalPeer } from '../peer/peer.ts'
import type { ShareOptions, ShareResult } from '../store/content-store.ts'
import { parseByteSize } from '../utils/bytes.ts'

/** What `share` answers: the import, and replicas placed (none yet). */
export interface ShareResponse extends Omit<ShareResult, 'cid'> {
  cid: string
  replicas: { target: number, min: number, complete: boolean }
}

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

export function registerContentRoutes (app: FastifyInstance, peer: ShoalPeer, prefix: string): void {
  // An uploaded file is handed to the importer as the raw request stream:
  // never buffered whole, never subject to the JSON body limit.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => { done(null, payload) })

  app.post<{ Querystring: ShareQuery, Body: ShareBody | Readable }>(`${prefix}/content`, async (request, reply) => {
    const isUpload = request.body instanceof Readable
    const fields: ShareBody = isUpload ? request.query : (request.body as ShareBody ?? {})
    const chunkSize = optionalSize(fields.chunkSize, 'chunkSize')
    const replicas = optionalInt(fields.replicas, 'replicas', 1, 64) ?? peer.repo.config.replicas
    const name = typeof fields.name === 'string' && fields.name !== '' ? fields.name : undefined
    const controller = new AbortController()
    // The client went away before the import finished: stop importing.
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) controller.abort(new InvalidInputError('the client closed the request')) })
    const options: ShareOptions = { chunkSize, name, signal: controller.signal }
    const run = async (onProgress?: (bytes: number) => void): Promise<ShareResponse> => {
      let result: ShareResult
      if (isUpload) {
        result = await peer.content.shareStream(request.body as Readable, { ...options, onProgress })
      } else {
        if (typeof fields.path !== 'string' || fields.path === '') throw new InvalidInputError('"path" (a file the daemon can read) or an application/octet-stream body is required')
        result = await peer.content.shareFile(fields.path, { ...options, onProgress })
      }
      return { ...result, cid: result.cid.toString(), replicas: { target: replicas, min: 0, complete: false } }
    }
    if (!wantsProgress(request)) return run()
    return streamProgress(reply, run)
  })

  app.get(`${prefix}/content`, async () => ({
    holdings: await peer.content.list(),
    store: peer.content.usage()
  }))

  const read = async (request: FastifyRequest<{ Params: { cid: string } }>, reply: FastifyReply): Promise<unknown> => {
    const cid = parseCid(request.params.cid)
    const size = await peer.content.size(cid)
    reply.header('accept-ranges', 'bytes').header('etag', `"${cid.toString()}"`).type('application/octet-stream')
    const range = parseRange(request.headers.range, size)
    if (range === 'unsatisfiable') {
      return reply.code(416).header('content-range', `bytes */${size}`).send()
    }
    const { offset, length } = range ?? { offset: 0, length: size }
    if (range != null) reply.code(206).header('content-range', `bytes ${offset}-${offset + length - 1}/${size}`)
    reply.header('content-length', length)
    const controller = new AbortController()
    reply.raw.on('close', () => { controller.abort() })
    return reply.send(Readable.from(peer.content.read(cid, { offset, length, signal: controller.signal })))
  }
  // fastify answers HEAD through this route too (headers only)
  app.get<{ Params: { cid: string } }>(`${prefix}/content/:cid`, read)

  app.delete<{ Params: { cid: string } }>(`${prefix}/content/:cid`, async (request) => {
    return peer.content.remove(parseCid(request.params.cid))
  })

  app.post(`${prefix}/store/gc`, async () => peer.content.gc())

  app.post<{ Querystring: { repair?: string } }>(`${prefix}/store/verify`, async (request) => {
    return peer.content.verify({ repair: request.query.repair === 'true' || request.query.repair === '1' })
  })
}

function wantsProgress (request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').includes('application/x-ndjson')
}

/**
 * Runs `work` while streaming NDJSON: `{"progress":{"bytes":N}}` lines at
 * most every 100 ms, then one `{"result":...}` or `{"error":...}` line.
 */
async function streamProgress<T> (reply: FastifyReply, work: (onProgress: (bytes: number) => void) => Promise<T>): Promise<FastifyReply> {
  const out = new PassThrough()
  let last = 0
  const line = (value: unknown): void => { out.write(JSON.stringify(value) + '\n') }
  work(bytes => {
    const now = Date.now()
    if (now - last < PROGRESS_INTERVAL_MS) return
    last = now
    line({ progress: { bytes } })
  }).then(result => { line({ result }) }, (err: Error & { exitCode?: number }) => {
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
