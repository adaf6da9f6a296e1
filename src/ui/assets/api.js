// The page's side of the control API: same-origin requests that carry the
// session cookie (never the API token), the X-Shoal-UI header on every
// request (state-changing ones are refused without it), NDJSON progress
// streams, and the server-sent events stream.
export const API = '/api/v1'

export class ApiError extends Error {
  constructor (status, body) {
    super(body?.error?.message ?? `HTTP ${status}`)
    this.name = body?.error?.name ?? 'ApiError'
    this.status = status
  }
}

export async function api (method, path, body) {
  const init = { method, headers: { 'x-shoal-ui': '1' }, credentials: 'same-origin' }
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  const res = await fetch(API + path, init)
  const parsed = await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, parsed)
  return parsed
}

/** Reads `{progress}` lines (onProgress each) until the `{result}` or `{error}` line. */
export async function readProgress (res, onProgress) {
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null))
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let rest = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) throw new ApiError(500, { error: { message: 'the daemon closed the progress stream early' } })
    rest += value
    let nl
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = JSON.parse(rest.slice(0, nl))
      rest = rest.slice(nl + 1)
      if (line.progress != null) onProgress(line.progress)
      else if (line.result != null) return line.result
      else if (line.error != null) throw new ApiError(500, line)
    }
  }
}

/** Shares a File (from the picker or a drop): its bytes streamed as the request body. */
export async function shareFile (file, onProgress) {
  const res = await fetch(`${API}/content?name=${encodeURIComponent(file.name)}`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/octet-stream', accept: 'application/x-ndjson', 'x-shoal-ui': '1' },
    body: file
  })
  return readProgress(res, onProgress)
}

export async function fetchCid (cid, onProgress) {
  const res = await fetch(`${API}/fetch`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', accept: 'application/x-ndjson', 'x-shoal-ui': '1' },
    body: JSON.stringify({ cid })
  })
  return readProgress(res, onProgress)
}

/**
 * The events stream: calls onEvent(topic, data) for each event, and
 * onState(live, closed) as it connects and drops (EventSource reconnects
 * unless the daemon refused it: closed).
 */
export function subscribe (onEvent, onState) {
  const source = new EventSource(`${API}/events`)
  for (const topic of ['status', 'peers', 'holdings', 'routing', 'swarm', 'progress']) {
    source.addEventListener(topic, e => { onEvent(topic, JSON.parse(e.data)) })
  }
  source.onopen = () => { onState(true, false) }
  // CLOSED: the daemon refused the stream (a session gone with a restart), so no reconnecting
  source.onerror = () => { onState(false, source.readyState === EventSource.CLOSED) }
  return () => { source.close() }
}

export function formatBytes (n) {
  if (n == null) return '–'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

export function short (id) {
  return id == null ? '' : id.length > 16 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id
}
