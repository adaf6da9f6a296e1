/** Defaults, with units in their names. Config fields fall back to these. */

export const SHOAL_VERSION = '0.1.0'
export const AGENT_VERSION = `shoal/${SHOAL_VERSION}`

/** Shoal's own DHT, so it never mixes with the public IPFS DHT. */
export const DHT_PROTOCOL = '/shoal/kad/1.0.0'
export const DHT_K_BUCKET_SIZE = 20

export const DEFAULT_LISTEN_PORT = 4101
export const DEFAULT_API_PORT = 5101
export const DEFAULT_REPLICAS = 3
/**
 * The largest k a sender's claim makes a peer rank a put against, and the
 * largest k a replica holding keeps (a peer's own configured k counts
 * whatever it is): a DHT lookup knows the 20 closest peers of a key, so no
 * sender can tell further ranks apart, and a larger claim would let one
 * sender make every peer of a network take every block, and every holder
 * push it to that many peers on every repair pass.
 */
export const MAX_RANKED_REPLICAS = 20

/** Enough for 100 local peers all connected to one bootstrap peer, with room. */
export const MAX_CONNECTIONS = 400

/**
 * Connection watermarks (connection-trimmer.ts): past the high one, idle
 * connections older than the grace period are closed down to the low one.
 * kubo's are 32 / 96 / 20 s; a Shoal peer that shares a file talks to
 * every holder of its blocks at once, so both are higher. All stay well
 * under MAX_CONNECTIONS, where libp2p starts refusing inbound connections.
 */
export const CONNECTIONS_LOW_WATER = 64
export const CONNECTIONS_HIGH_WATER = 128
export const CONNECTIONS_GRACE_PERIOD_SECONDS = 20

/**
 * Addresses exempt from libp2p's inbound limits (the per-host rate, the
 * pending-connection cap, maxConnections) and from pruning: none by default.
 * NAT, container proxies and tunnels make remote peers look private, so a
 * private range is no proof of a friendly peer. Local swarms and the lab
 * write their own addresses into `connections.allow`.
 */
export const DEFAULT_ALLOW_LIST: readonly string[] = []

/**
 * Inbound connections one host (IP address) may open per second; more are
 * refused before any handshake (libp2p's default, made explicit).
 */
export const INBOUND_CONNECTIONS_PER_HOST_PER_SECOND = 5
/**
 * An inbound connection must finish its handshake (Noise, multistream,
 * yamux) within this long, or it is closed. libp2p's default: a few round
 * trips need far less, but a loaded machine running a whole test swarm in
 * one process can take seconds. A silent connection holds a pending slot
 * until then.
 */
export const INBOUND_UPGRADE_TIMEOUT_MS = 10_000
/**
 * Inbound connections still in their handshake, from all hosts together;
 * more are refused. Sized so that one host, held to its rate for a whole
 * upgrade timeout (libp2p's rate window is fixed, so up to rate x
 * (timeout + 1 s) = 55), fills less than a quarter of it: one slow or
 * silent host cannot lock everyone else out. A pending connection costs a
 * socket and a little memory.
 */
export const MAX_INCOMING_PENDING_CONNECTIONS = 256
/** What a swarm on one machine (test swarms, `swarm up`) puts in its peers' `connections.allow`. */
export const LOCAL_SWARM_ALLOW = '/ip4/127.0.0.1'

/** How many known peers to redial from the peer store on start. */
export const RECONNECT_PEERS_ON_START = 20
export const BOOTSTRAP_DIAL_TIMEOUT_MS = 10_000
/** Retry bootstrapping this often while the peer has no connection at all. */
export const BOOTSTRAP_RETRY_INTERVAL_MS = 5_000

/**
 * How long a stopping peer may spend leaving its overlay (Chord: handing
 * its replicas and records on); under SHUTDOWN_TIMEOUT_MS, so a swarm down
 * never kills a peer that is still leaving.
 */
export const OVERLAY_LEAVE_TIMEOUT_MS = 8_000


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
/**
 * Open files one peer of a swarm host is allowed for, when the default
 * layout sizes its hosts: its stores, its API sockets and one per
 * connection (a peer that joins a 1,000-peer swarm through seeds holds
 * 40-60). Hosts of 500 peers under a 20,000-file limit ran out while
 * joining: the kernel refused their sockets and the API connections they
 * accepted were reset.
 */
export const OPEN_FILES_PER_HOSTED_PEER = 100
/**
 * A peer in a swarm host keeps at most this share of the open files its
 * host has per peer as connections (its high watermark; the low one is
 * three quarters of it): the rest is for its stores, the host's API
 * sockets and the connections still in their grace period. A host of 200
 * peers under a 20,000-file limit gives 64 / 48.
 */
export const HOSTED_PEER_CONNECTIONS_SHARE = 0.64
