// The page's side of the control API: same-origin requests that carry the
// session cookie (never the API token) and the session's secret in the
// X-Shoal-UI header on every request (the daemon refuses the cookie
// without it), NDJSON progress streams, and the server-sent events stream
// (read with fetch: an EventSource cannot send the header).
export const API = '/api/v1'
const SECRET_KEY = 'shoal-ui-secret'
const TOPICS = ['status', 'peers', 'holdings', 'routing', 'swarm', 'progress']
const RECONNECT_MS = 1000

// The login's redirect lands on /#s=SECRET: kept in this tab's
// sessionStorage (this origin only: other ports are other origins, so it
// survives a reload), and taken out of the address bar and the history.
const fragment = /^#s=([\w-]+)$/.exec(location.hash)
if (fragment != null) {
  sessionStorage.setItem(SECRET_KEY, fragment[1])
  history.replaceState(null, '', location.pathname)
}
const secret = sessionStorage.getItem(SECRET_KEY)

/** False when this tab never got a secret (a tab opened without the login link). */
export function hasSecret () {
  return secret != null
}

/** The headers every request of the page carries. */
function uiHeaders (extra = {}) {
  return secret == null ? extra : { ...extra, 'x-shoal-ui': secret }
}

export class ApiError extends Error {
  constructor (status, body) {
    super(body?.error?.message ?? `HTTP ${status}`)
    this.name = body?.error?.name ?? 'ApiError'
    this.status = status
  }
}

export async function api (method, path, body) {
  const init = { method, headers: uiHeaders(), credentials: 'same-origin' }
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
    headers: uiHeaders({ 'content-type': 'application/octet-stream', accept: 'application/x-ndjson' }),
    body: file
  })
  return readProgress(res, onProgress)
}

export async function fetchCid (cid, onProgress) {
  const res = await fetch(`${API}/fetch`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: uiHeaders({ 'content-type': 'application/json', accept: 'application/x-ndjson' }),
    body: JSON.stringify({ cid })
  })
  return readProgress(res, onProgress)
}

/**
 * The events stream: calls onEvent(topic, data) for each event, and
 * onState(live, closed) as it connects and drops. It reconnects after a
 * drop unless the daemon refused it (closed: a session gone with a restart).
 */
export function subscribe (onEvent, onState) {
  const abort = new AbortController()
  let retry
  const again = () => {
    if (abort.signal.aborted) return
    onState(false, false)
    retry = setTimeout(run, RECONNECT_MS)
  }
  const run = async () => {
    let res
    try {
      res = await fetch(`${API}/events`, { headers: uiHeaders({ accept: 'text/event-stream' }), credentials: 'same-origin', signal: abort.signal })
    } catch {
      again()
      return
    }
    if (!res.ok) {
      onState(false, true)
      return
    }
    onState(true, false)
    try {
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let rest = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        rest += value
        let end
        while ((end = rest.indexOf('\n\n')) >= 0) {
          let event = 'message'
          let data = ''
          for (const line of rest.slice(0, end).split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7)
            else if (line.startsWith('data: ')) data += line.slice(6)
          }
          rest = rest.slice(end + 2)
          if (TOPICS.includes(event)) onEvent(event, JSON.parse(data))
        }
      }
    } catch {
      // the connection dropped (or this page stopped listening): again() tells which
    }
    again()
  }
  run()
  return () => { abort.abort(); clearTimeout(retry) }
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
