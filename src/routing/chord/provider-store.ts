/**
 * Provider records this peer keeps as one of a root's responsible peers:
 * for each key (a root CID's multihash bytes), who announced holding it and
 * where to reach them, until the record expires. Held in memory: providers
 * announce again every reprovide interval, so a restarted peer is refilled
 * within one, and the other k-1 responsible peers answer meanwhile.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import { MAX_PROVIDER_KEYS, MAX_PROVIDERS_PER_KEY } from './constants.ts'
import type { PeerInfo } from './messages.ts'

interface Entry {
  addrs: Multiaddr[]
  expires: number
}

export class ProviderStore {
  private readonly records = new Map<string, { key: Uint8Array, providers: Map<string, Entry> }>()
  private readonly ttlMs: number
  private readonly now: () => number

  constructor (ttlMs: number, now: () => number = Date.now) {
    this.ttlMs = ttlMs
    this.now = now
  }

  get size (): number { return this.records.size }

  /** Keeps (or renews) a provider for a key; false when the store is full of other keys. */
  add (key: Uint8Array, provider: PeerInfo): boolean {
    const name = keyName(key)
    let record = this.records.get(name)
    if (record == null) {
      if (this.records.size >= MAX_PROVIDER_KEYS) this.prune()
      if (this.records.size >= MAX_PROVIDER_KEYS) return false
      record = { key: Uint8Array.from(key), providers: new Map() }
      this.records.set(name, record)
    }
    record.providers.delete(provider.id)
    record.providers.set(provider.id, { addrs: provider.addrs, expires: this.now() + this.ttlMs })
    // the longest-silent provider makes room
    if (record.providers.size > MAX_PROVIDERS_PER_KEY) record.providers.delete(record.providers.keys().next().value as string)
    return true
  }

  /** The unexpired providers of a key, most recently announced last. */
  get (key: Uint8Array): PeerInfo[] {
    const record = this.records.get(keyName(key))
    if (record == null) return []
    const now = this.now()
    const found: PeerInfo[] = []
    for (const [id, entry] of record.providers) {
      if (entry.expires > now) found.push({ id, addrs: entry.addrs })
    }
    return found
  }

  /** Every unexpired record (a leaving peer hands them on). */
  all (): Array<{ key: Uint8Array, providers: PeerInfo[] }> {
    this.prune()
    return [...this.records.values()].map(record => ({ key: record.key, providers: this.get(record.key) }))
  }

  prune (): void {
    const now = this.now()
    for (const [name, record] of this.records) {
      for (const [id, entry] of record.providers) if (entry.expires <= now) record.providers.delete(id)
      if (record.providers.size === 0) this.records.delete(name)
    }
  }

  clear (): void {
    this.records.clear()
  }
}

function keyName (key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64')
}
