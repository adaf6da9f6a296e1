import { TimeoutError } from '../errors.ts'

export interface WaitForOptions {
  timeoutMs: number
  intervalMs?: number
  signal?: AbortSignal
  /** Builds the timeout error's message at the moment it fires. */
  message: () => string
}

/** Polls `check` until it returns true; throws TimeoutError after `timeoutMs`. */
export async function waitFor (check: () => boolean | Promise<boolean>, options: WaitForOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  const interval = options.intervalMs ?? 100
  while (true) {
    options.signal?.throwIfAborted()
    if (await check()) return
    if (Date.now() >= deadline) throw new TimeoutError(options.message())
    await sleep(interval, options.signal)
  }
}

/** `promise`, or the signal's reason as soon as it aborts (the promise itself runs on). */
export async function raceSignal<T> (promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal == null) return promise
  signal.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(signal.reason as Error) }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
  })
}

export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  const { setTimeout } = await import('node:timers/promises')
  await setTimeout(ms, undefined, { signal })
}

/** Runs `fn` over `items` with at most `concurrency` at once, results in order. */
export async function mapConcurrent<T, R> (items: T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i], i)
    }
  })
  await Promise.all(workers)
  return results
}
