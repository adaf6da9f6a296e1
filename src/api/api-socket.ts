/**
 * The control API's unix socket, `<repo>/api.sock`: how the CLI reaches its
 * daemon. It lives in the repo folder (0700) with mode 0600, so only the
 * repo's owner can connect, and a pathname socket is reachable from any
 * network namespace (the lab runs each peer in its own, where the peer's
 * 127.0.0.1 is not the CLI's). The token goes only over this socket: a TCP
 * port named by a stale `<repo>/api` may belong to anyone by now.
 *
 * A socket path is at most 107 bytes on Linux; a longer one is bound and
 * reached through the directory's descriptor (`/proc/self/fd/N/api.sock`),
 * which names the same file.
 */
import { closeSync, openSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'

/** sun_path holds 108 bytes with the terminating NUL; keep a margin. */
const MAX_SOCKET_PATH_BYTES = 100

/**
 * Runs `use` with a path that names `file` and fits a socket address; the
 * directory's descriptor (if one was needed) is closed when `use` settles.
 */
export async function withSocketPath<T> (file: string, use: (socketPath: string) => Promise<T>): Promise<T> {
  if (Buffer.byteLength(file) <= MAX_SOCKET_PATH_BYTES || process.platform !== 'linux') return use(file)
  const fd = openSync(path.dirname(file), 'r')
  try {
    return await use(`/proc/self/fd/${fd}/${path.basename(file)}`)
  } finally {
    closeSync(fd)
  }
}

/** A connection to the socket at `file` (for http.request's createConnection). */
export function connectSocket (file: string): net.Socket {
  if (Buffer.byteLength(file) <= MAX_SOCKET_PATH_BYTES || process.platform !== 'linux') return net.connect(file)
  const fd = openSync(path.dirname(file), 'r')
  const socket = net.connect(`/proc/self/fd/${fd}/${path.basename(file)}`)
  let open = true
  const release = (): void => {
    if (open) closeSync(fd)
    open = false
  }
  socket.once('connect', release)
  socket.once('error', release)
  socket.once('close', release)
  return socket
}
