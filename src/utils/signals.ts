/**
 * Abort signals that let go. `anySignal` aborts when any of its inputs does
 * (or when its own deadline passes), and `clear()` removes the listeners it
 * put on its inputs and stops its timer, so a long-lived signal (a stream's,
 * the daemon's) does not collect one listener per request. `AbortSignal.any`
 * keeps its inputs' listeners until garbage collection. The pattern of
 * kad-dht:
 *
 *   const signal = anySignal([options.signal], { timeoutMs: 30_000, message: () => 'no answer in 30 s' })
 *   try { await work({ signal }) } finally { signal.clear() }
 */
import { TimeoutError } from '../errors.ts'

export interface ClearableSignal extends AbortSignal {
  /** Removes this signal's listeners from its inputs and stops its deadline. Call it when done (in `finally`). */
  clear: () => void
}

export interface AnySignalOptions {
  /** Abort with a TimeoutError after this long. */
  timeoutMs?: number
  /** The TimeoutError's message. */
  message?: () => string
}

export function anySignal (signals: Array<AbortSignal | undefined | null>, options: AnySignalOptions = {}): ClearableSignal {
  const controller = new AbortController()
  const inputs = signals.filter(s => s != null)
  let timer: ReturnType<typeof setTimeout> | undefined
  const clear = (): void => {
    for (const s of inputs) s.removeEventListener('abort', onAbort)
    if (timer != null) clearTimeout(timer)
    timer = undefined
  }
  function onAbort (this: AbortSignal): void {
    clear()
    controller.abort(this.reason)
  }
  for (const s of inputs) {
    if (s.aborted) {
      clear()
      controller.abort(s.reason)
      break
    }
    s.addEventListener('abort', onAbort)
  }
  if (!controller.signal.aborted && options.timeoutMs != null) {
    const ms = options.timeoutMs
    timer = setTimeout(() => {
      clear()
      controller.abort(new TimeoutError(options.message?.() ?? `timed out after ${ms} ms`))
    }, ms)
    // a deadline is no reason to keep the process alive
    timer.unref?.()
  }
  return Object.assign(controller.signal, { clear })
}
