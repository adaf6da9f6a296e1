/** Defaults, with units in their names. Config fields fall back to these. */

export const SHOAL_VERSION = '0.1.0'
export const AGENT_VERSION = `shoal/${SHOAL_VERSION}`

/** Shoal's own DHT, so it never mixes with the public IPFS DHT. */
export const DHT_PROTOCOL = '/shoal/kad/1.0.0'
export const DHT_K_BUCKET_SIZE = 20

export const DEFAULT_LISTEN_PORT = 4101
export const DEFAULT_API_PORT = 5101
export const DEFAULT_REPLICAS = 3

/** Enough for 100 local peers all connected to one bootstrap peer, with room. */
export const MAX_CONNECTIONS = 400

/**
 * Addresses exempt from libp2p's inbound rate limit (5 conns/s per host) and
 * its pending-connection cap: a local swarm or a LAN would trip both.
 */
export const ALLOW_LIST = [
  '/ip4/127.0.0.0/ipcidr/8',
  '/ip4/10.0.0.0/ipcidr/8',
  '/ip4/172.16.0.0/ipcidr/12',
  '/ip4/192.168.0.0/ipcidr/16',
  '/ip6/::1/ipcidr/128'
]

/** How many known peers to redial from the peer store on start. */
export const RECONNECT_PEERS_ON_START = 20
export const BOOTSTRAP_DIAL_TIMEOUT_MS = 10_000
/** Retry bootstrapping this often while the peer has no connection at all. */
export const BOOTSTRAP_RETRY_INTERVAL_MS = 5_000

/** libp2p's connection monitor: one ping per connection this often. */
export const CONNECTION_PING_INTERVAL_MS = 60_000

/** Every control API route but /metrics lives under this. */
export const API_PREFIX = '/api/v1'

export const SHUTDOWN_TIMEOUT_MS = 10_000
export const API_REQUEST_TIMEOUT_MS = 30_000

/** Files inside a repo folder. */
export const REPO_FILES = {
  config: 'config.json',
  identity: 'identity.key',
  apiToken: 'api.token',
  apiAddress: 'api',
  /** The control API's unix socket (see src/api/api-socket.ts). */
  apiSocket: 'api.sock',
  lock: 'repo.lock',
  datastore: 'datastore',
  blocks: 'blocks'
} as const

/** `swarm up`: swarms up to this size run one daemon process per peer by default. */
export const OWN_PROCESS_MAX_PEERS = 20
