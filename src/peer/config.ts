/**
 * The repo's config.json: what it holds, its defaults, and validation that
 * names the file and the field at fault in one line.
 */
import { multiaddr } from '@multiformats/multiaddr'
import {
  CONNECTIONS_GRACE_PERIOD_SECONDS, CONNECTIONS_HIGH_WATER, CONNECTIONS_LOW_WATER,
  DEFAULT_ALLOW_LIST, DEFAULT_API_PORT, DEFAULT_LISTEN_PORT, DEFAULT_REPLICAS,
  DHT_K_BUCKET_SIZE, MAX_CONNECTIONS
} from '../constants.ts'
import { InvalidConfigError } from '../errors.ts'
import { OVERLAY_NAMES, type OverlayName } from '../routing/index.ts'
import { DEFAULT_SUCCESSOR_LIST_LENGTH as CHORD_SUCCESSOR_LIST_LENGTH, MAX_SUCCESSOR_LIST_LENGTH as MAX_CHORD_SUCCESSOR_LIST_LENGTH } from '../routing/chord/constants.ts'
import { parseByteSize } from '../utils/bytes.ts'
import { multiaddrProblem } from './multiaddrs.ts'
import { parseApiAddress } from './api-address.ts'

export { parseApiAddress }

export interface ShoalConfig {
  /** Schema version of this file. */
  version: 1
  /** libp2p listen multiaddrs. */
  listen: string[]
  /** Multiaddrs to announce instead of the listen ones (e.g. behind NAT). */
  announce: string[]
  /** HOST:PORT of the control API; HOST must be loopback. Port 0 = any. */
  api: string
  /** Multiaddrs (with /p2p/<id>) dialled on start. */
  bootstrap: string[]
  /**
   * The overlay this peer routes through: "kademlia" (default) or "chord"
   * (docs/overlays.md). Every peer of a swarm runs the same one: a peer
   * refuses peers of the other.
   */
  overlay: OverlayName
  chord: {
    /** r, the successor list's length: how many successive failures the ring survives. */
    successorListLength: number
  }
  dht: {
    /** Peers per k-bucket and per lookup result (kad-dht's k). */
    kBucketSize: number
  }
  connections: {
    maxConnections: number
    /** Past this many open connections, idle ones are closed... */
    highWater: number
    /** ...down to this many (src/routing/connection-trimmer.ts). */
    lowWater: number
    /** A connection younger than this is never closed for being idle. */
    gracePeriodSeconds: number
    /**
     * Address ranges (`/ip4/A.B.C.D/ipcidr/N`, or one address) exempt from
     * every inbound connection limit and from pruning. Default none; a local
     * swarm or the lab lists its own addresses.
     */
    allow: string[]
    /**
     * Keep and dial other peers' private and loopback addresses: true (a
     * LAN), false, or "auto" (default): true only when every listen and
     * announce address of this peer is private. See
     * src/routing/private-addresses.ts.
     */
    privateAddresses: 'auto' | boolean
  }
  /** Replicas placed per block by `share` (Shoal's k, not the DHT's). */
  replicas: number
  repair: {
    /** Seconds between repair passes over the replicas held here (jittered ±25%). */
    intervalSeconds: number
    /** Most block copies one pass pushes (the rest wait for the next pass). */
    maxPushesPerRun: number
  }
  storage: {
    /**
     * Most bytes the blockstore may hold: a byte count, a size such as
     * "20GiB", or "auto" (half of what the store could grow to on this disk
     * when the daemon starts: what it holds plus the free space).
     */
    quota: 'auto' | number | string
    /**
     * Most bytes of blocks held for others (replicas placed here), apart from
     * `quota`, so replicas never crowd out what the user shares and fetches:
     * a byte count, a size, or "auto" (a quarter of what the store could grow
     * to when the daemon starts).
     */
    replicaQuota: 'auto' | number | string
    /**
     * fsync every block before it becomes visible (default true): a power
     * loss then never leaves a bad block. Off, imports run at page-cache
     * speed instead of disk speed; a killed process still loses nothing.
     */
    sync: boolean
  }
  transfer: {
    /**
     * Most bytes per second this peer sends to fetchers, over all of them:
     * a byte count, a size such as "10MiB", or 0 for no limit (default).
     */
    maxUploadRate: number | string
  }
}

export function defaultConfig (): ShoalConfig {
  return {
    version: 1,
    listen: [`/ip4/0.0.0.0/tcp/${DEFAULT_LISTEN_PORT}`],
    announce: [],
    api: `127.0.0.1:${DEFAULT_API_PORT}`,
    bootstrap: [],
    overlay: 'kademlia',
    chord: { successorListLength: CHORD_SUCCESSOR_LIST_LENGTH },
    dht: { kBucketSize: DHT_K_BUCKET_SIZE },
    connections: { maxConnections: MAX_CONNECTIONS, highWater: CONNECTIONS_HIGH_WATER, lowWater: CONNECTIONS_LOW_WATER, gracePeriodSeconds: CONNECTIONS_GRACE_PERIOD_SECONDS, allow: [...DEFAULT_ALLOW_LIST], privateAddresses: 'auto' },
    replicas: DEFAULT_REPLICAS,
    repair: { intervalSeconds: 300, maxPushesPerRun: 1024 },
    storage: { quota: 'auto', replicaQuota: 'auto', sync: true },
    transfer: { maxUploadRate: 0 }
  }
}

type Check = (value: unknown, field: string) => void

/**
 * Validates a parsed config against the schema. Missing sections fall back to
 * defaults (so older files keep working); unknown fields are refused so a
 * typo does not silently do nothing.
 */
export function validateConfig (raw: unknown, file: string): ShoalConfig {
  const fail = (field: string, why: string): never => {
    throw new InvalidConfigError(`invalid config ${file}: field "${field}" ${why}`)
  }
  if (!isObject(raw)) fail('(root)', 'must be a JSON object')
  const obj = raw as Record<string, unknown>
  const defaults = defaultConfig()
  const merged: Record<string, unknown> = { ...defaults, ...obj }
  merged.chord = { ...defaults.chord, ...(isObject(obj.chord) ? obj.chord : {}) }
  merged.dht = { ...defaults.dht, ...(isObject(obj.dht) ? obj.dht : {}) }
  merged.connections = { ...defaults.connections, ...(isObject(obj.connections) ? obj.connections : {}) }
  merged.repair = { ...defaults.repair, ...(isObject(obj.repair) ? obj.repair : {}) }
  merged.storage = { ...defaults.storage, ...(isObject(obj.storage) ? obj.storage : {}) }
  merged.transfer = { ...defaults.transfer, ...(isObject(obj.transfer) ? obj.transfer : {}) }

  const multiaddrList = (withPeerId: boolean): Check => (value, field) => {
    if (!Array.isArray(value)) fail(field, 'must be an array of multiaddr strings')
    ;(value as unknown[]).forEach((item, i) => {
      if (typeof item !== 'string') fail(`${field}[${i}]`, 'must be a multiaddr string')
      const problem = multiaddrProblem(item as string, withPeerId)
      if (problem != null) fail(`${field}[${i}]`, problem)
    })
  }
  // libp2p turns each entry into an IP range when it starts: refuse anything else here
  const ipRangeList: Check = (value, field) => {
    multiaddrList(false)(value, field)
    ;(value as string[]).forEach((item, i) => {
      const names = multiaddr(item).getComponents().map(c => c.name)
      const ipRange = (names[0] === 'ip4' || names[0] === 'ip6') && names.slice(1).every(n => n === 'ipcidr') && names.length <= 2
      if (!ipRange) fail(`${field}[${i}]`, `must be an address or range like "/ip4/127.0.0.1" or "/ip4/10.0.0.0/ipcidr/8", got "${item}"`)
    })
  }
  const int = (min: number, max: number): Check => (value, field) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      fail(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
    }
  }
  const section = (checks: Record<string, Check>): Check => (value, field) => {
    if (!isObject(value)) fail(field, 'must be an object')
    checkFields(value as Record<string, unknown>, checks, `${field}.`)
  }
  const checkFields = (value: Record<string, unknown>, checks: Record<string, Check>, prefix: string): void => {
    for (const key of Object.keys(value)) {
      if (checks[key] == null) fail(prefix + key, 'is not a known setting')
    }
    for (const [key, check] of Object.entries(checks)) check(value[key], prefix + key)
  }

  checkFields(merged, {
    version: (v, f) => { if (v !== 1) fail(f, `must be 1, got ${JSON.stringify(v)}`) },
    listen: multiaddrList(false),
    announce: multiaddrList(false),
    api: (v, f) => { if (typeof v !== 'string') fail(f, 'must be a "HOST:PORT" string'); parseApiAddress(v as string, f, file) },
    bootstrap: multiaddrList(true),
    overlay: (v, f) => { if (!(OVERLAY_NAMES as readonly unknown[]).includes(v)) fail(f, `must be ${OVERLAY_NAMES.map(n => `"${n}"`).join(' or ')}, got ${JSON.stringify(v)}`) },
    chord: section({ successorListLength: int(1, MAX_CHORD_SUCCESSOR_LIST_LENGTH) }),
    dht: section({ kBucketSize: int(2, 200) }),
    connections: section({
      maxConnections: int(1, 100_000),
      highWater: int(1, 100_000),
      lowWater: int(0, 100_000),
      gracePeriodSeconds: int(0, 86_400),
      allow: ipRangeList,
      privateAddresses: (v, f) => { if (v !== 'auto' && typeof v !== 'boolean') fail(f, `must be true, false or "auto", got ${JSON.stringify(v)}`) }
    }),
    replicas: int(1, 64),
    repair: section({ intervalSeconds: int(1, 86_400), maxPushesPerRun: int(1, 1_000_000) }),
    storage: section({
      quota: byteQuota(fail),
      replicaQuota: byteQuota(fail),
      sync: (v, f) => { if (typeof v !== 'boolean') fail(f, `must be true or false, got ${JSON.stringify(v)}`) }
    }),
    transfer: section({
      maxUploadRate: (v, f) => {
        if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return
        if (typeof v === 'string' && parseByteSize(v) != null) return
        fail(f, `must be 0 (no limit), bytes per second or a size like "10MiB", got ${JSON.stringify(v)}`)
      }
    })
  }, '')
  const connections = merged.connections as ShoalConfig['connections']
  if (connections.lowWater > connections.highWater) fail('connections.lowWater', `must not be above connections.highWater (${connections.highWater}), got ${connections.lowWater}`)
  return merged as unknown as ShoalConfig
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The check of a quota setting: "auto", a byte count, or a size such as "20GiB". */
function byteQuota (fail: (field: string, why: string) => never) {
  return (v: unknown, f: string): void => {
    if (v === 'auto') return
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return
    if (typeof v === 'string' && parseByteSize(v) != null) return
    fail(f, `must be "auto", a byte count or a size like "20GiB", got ${JSON.stringify(v)}`)
  }
}
