import { createRequire } from 'node:module'
import { Cluster, Redis, type AbstractConnector, type ClusterOptions, type RedisOptions } from 'ioredis'

// How the Redis store reaches Redis: one server by URL, a Redis Cluster by its seed nodes, or a
// Sentinel-managed primary. Every topology gets the same failure semantics as the standalone
// client (see RedisStore): no offline queue, a bounded command timeout, and no command sent a
// second time once it may have reached a server that could have run it.

export interface HostPort {
  host: string
  port: number
}

export type RedisTopology =
  | { kind: 'standalone', url: string }
  | { kind: 'cluster', nodes: HostPort[] }
  | { kind: 'sentinel', sentinels: HostPort[], name: string }

export interface RedisConnectionOptions {
  topology: RedisTopology
  commandTimeoutMs: number
  connectTimeoutMs: number
  /** ACL user and password of the data nodes; for a URL, its own credentials win. */
  username?: string | undefined
  password?: string | undefined
  /** The password of the Sentinels themselves, when they require one. */
  sentinelPassword?: string | undefined
  /** TLS to every node (and to the Sentinels); a `rediss://` URL turns it on by itself. */
  tls?: boolean | undefined
  /** Extra options for every data-node connection (tests shorten delays with them). */
  redisOptions?: RedisOptions | undefined
  /** Extra Cluster options. */
  clusterOptions?: ClusterOptions | undefined
}

export type RedisClient = Redis | Cluster

/** How often a Cluster client reloads the slot map without being asked to (ms), by default. */
export const CLUSTER_SLOTS_REFRESH_MS = 1000

// ioredis listens for a socket's errors with once(): a socket that emits a second error (seen
// under load with TLS, a handshake cut short by the connect timeout) crashed the process as an
// unhandled 'error' event. Every socket of a data-node connection keeps a listener for good;
// ioredis still acts on the first error and on 'close', as before (D46).
type ConnectorConstructor = NonNullable<RedisOptions['Connector']>
const { default: StandaloneConnector } = createRequire(import.meta.url)('ioredis/built/connectors/StandaloneConnector.js') as { default: ConnectorConstructor }

export const ErrorSafeConnector: ConnectorConstructor = class extends StandaloneConnector {
  async connect (...args: Parameters<AbstractConnector['connect']>): ReturnType<AbstractConnector['connect']> {
    const stream = await StandaloneConnector.prototype.connect.apply(this, args)
    stream.on('error', () => {})
    return stream
  }
}

/** The options every data-node connection gets, whatever the topology. */
function nodeOptions (options: RedisConnectionOptions): RedisOptions {
  return {
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    // A request must fail fast while Redis is away rather than queue for reconnection.
    maxRetriesPerRequest: 1,
    // ioredis would send queued and in-flight commands on reconnection, even those whose
    // request had already been answered 503: a refused write would be applied later.
    // Commands are sent only while connected; RedisStore waits for that within its deadline.
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => Math.min(50 * attempt, 500),
    lazyConnect: true,
    // TCP keepalive after 5 s idle (libuv then probes every second, 10 times): an idle
    // connection whose peer vanished is closed and reconnected within about 15 s, before a
    // request meets it. A busy one is caught sooner by watchForStalls.
    keepAlive: 5000,
    // A connection being replaced is ended, then destroyed if its peer has not closed its side
    // by then; a dead peer never does, so don't wait ioredis' default 2 s for it.
    disconnectTimeout: 100,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(options.tls === true ? { tls: {} } : {})
  }
}

export function createRedisClient (options: RedisConnectionOptions): RedisClient {
  const client = newRedisClient(options)
  const stopWatching = watchForStalls(client, options.commandTimeoutMs)
  const refreshMs = options.clusterOptions?.slotsRefreshInterval ?? CLUSTER_SLOTS_REFRESH_MS
  const stopRefreshing = client instanceof Cluster && refreshMs > 0 ? refreshSlotsEvery(client, refreshMs) : () => {}
  client.once('end', () => {
    stopWatching()
    stopRefreshing()
  })
  return client
}

/**
 * One plain connection to one server: a Cluster node by address, or else the configured server
 * (a URL or the Sentinels' primary). The near cache's tracking connections (near-cache.ts).
 */
export function createNodeClient (options: RedisConnectionOptions, node?: HostPort): Redis {
  let client: Redis
  if (options.topology.kind !== 'cluster') client = newRedisClient(options) as Redis
  else if (node !== undefined) client = new Redis({ ...nodeOptions(options), host: node.host, port: node.port, Connector: ErrorSafeConnector, ...options.redisOptions })
  else throw new Error('a connection to one Cluster node needs its address')
  const stopWatching = watchForStalls(client, options.commandTimeoutMs)
  client.once('end', stopWatching)
  return client
}

/**
 * The slot map is otherwise reloaded only when a command meets MOVED or a dead node, so an
 * instance that sat idle through a failover would send its first requests to the old master and
 * answer them 503. One CLUSTER SLOTS a second per instance keeps every instance's map at most
 * that old, busy or idle (D42). Our own unref'd timer rather than ioredis' slotsRefreshInterval,
 * whose refresh re-arms itself when it finishes after quit(), keeping a closed client's process
 * alive for good.
 */
function refreshSlotsEvery (cluster: Cluster, intervalMs: number): () => void {
  const timer = setInterval(() => {
    if (cluster.status === 'ready') cluster.refreshSlotsCache()
  }, intervalMs)
  timer.unref()
  return () => { clearInterval(timer) }
}

/** The primary behind the Sentinels, TLS included: for the store's connections and the event feed's alike. */
function sentinelOptions (options: RedisConnectionOptions, topology: Extract<RedisTopology, { kind: 'sentinel' }>): RedisOptions {
  return {
    sentinels: topology.sentinels,
    name: topology.name,
    role: 'master',
    ...(options.sentinelPassword !== undefined ? { sentinelPassword: options.sentinelPassword } : {}),
    enableTLSForSentinelMode: options.tls === true,
    // ioredis talks to the Sentinels themselves with sentinelTLS, not with tls.
    ...(options.tls === true ? { sentinelTLS: {} } : {}),
    // No failoverDetector: its Sentinel subscriptions have no error listener, so ioredis
    // prints "[ioredis] Unhandled error event" to stderr for every retry while a Sentinel is
    // down. A dead primary closes the connection; a demoted one answers READONLY.
    failoverDetector: false
  }
}

function newRedisClient (options: RedisConnectionOptions): RedisClient {
  const { topology } = options
  const node = nodeOptions(options)
  if (topology.kind === 'standalone') {
    // URL first: ioredis lets the URL's credentials and TLS scheme win over the options.
    return new Redis(topology.url, { ...node, Connector: ErrorSafeConnector, enableAutoPipelining: true, ...options.redisOptions })
  }
  if (topology.kind === 'sentinel') {
    return new Redis({
      ...node,
      ...sentinelOptions(options, topology),
      sentinelRetryStrategy: (attempt) => Math.min(50 * attempt, 500),
      // A demoted primary answers writes with READONLY: reconnect (through the Sentinels, to
      // the new primary) without resending the refused command.
      reconnectOnError: (error) => error.message.startsWith('READONLY') ? 1 : false,
      enableAutoPipelining: true,
      ...options.redisOptions
    })
  }
  const cluster = new Cluster(topology.nodes, {
    // Node connections: ioredis itself never reconnects them (a lost node is replaced after
    // a MOVED reply or a slot refresh) and keeps an offline queue only until a new node's
    // first connection is up.
    redisOptions: { ...node, Connector: ErrorSafeConnector, ...options.redisOptions },
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    lazyConnect: true,
    // A command whose connection closed may have run: never resend it (0 turns the retry
    // off). CLUSTERDOWN is answered 503 at once rather than retried past the request's
    // deadline. MOVED, ASK and TRYAGAIN mean the command did not run; they are followed at
    // once, a bounded number of times.
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    retryDelayOnTryAgain: 0,
    retryDelayOnMoved: 0,
    maxRedirections: 8,
    clusterRetryStrategy: (attempt) => Math.min(100 * attempt, 1000),
    slotsRefreshTimeout: options.connectTimeoutMs,
    // Node addresses come from CLUSTER SLOTS as IPs; with TLS the certificate names the
    // host, so keep it as given (no DNS round trip, SNI from the seed host).
    ...(options.tls === true ? { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) } : {}),
    ...options.clusterOptions,
    // The periodic refresh is createRedisClient's own (refreshSlotsEvery).
    slotsRefreshInterval: 0
  })
  // Without an offline queue, a command for a node whose connection is still being opened is
  // refused ("Connection is closed."): open each node's connection as soon as the node is
  // known (start-up, slot refresh, promotion) rather than on its first command.
  cluster.on('+node', (node: Redis) => { node.connect().catch(() => {}) })
  return cluster
}

export const SUBSCRIBER_CONNECTION_NAME = 'sso-attrs-events'

/**
 * A connection for sharded Pub/Sub (src/events/redis-feed.ts): to the given node of a Cluster,
 * else to the server or Sentinel-managed primary. It never reconnects or resubscribes by
 * itself: the feed opens a new one and replays what the lapse missed, so that no event is lost
 * without the feed knowing.
 */
export function createSubscriber (options: RedisConnectionOptions, node?: HostPort): Redis {
  const { topology } = options
  const subscriber: RedisOptions = {
    ...nodeOptions(options),
    ...options.redisOptions,
    commandTimeout: undefined,
    enableOfflineQueue: true,
    autoResubscribe: false,
    retryStrategy: () => null,
    lazyConnect: true,
    // Named, so that CLIENT LIST tells the feed's connections from the store's.
    connectionName: SUBSCRIBER_CONNECTION_NAME
  }
  if (node !== undefined) return new Redis({ ...subscriber, host: node.host, port: node.port, Connector: ErrorSafeConnector })
  if (topology.kind === 'standalone') return new Redis(topology.url, { ...subscriber, Connector: ErrorSafeConnector })
  if (topology.kind === 'cluster') throw new Error('a Cluster subscriber needs its node')
  return new Redis({ ...subscriber, ...sentinelOptions(options, topology), sentinelRetryStrategy: () => null })
}

/**
 * On a Cluster, the masters whose connection is being opened, as one promise that settles when
 * each is ready or has failed; undefined when there is none (the usual case). A command for a
 * node in that state would be refused, there being no offline queue.
 */
export function mastersConnecting (client: RedisClient): Promise<void> | undefined {
  if (!(client instanceof Cluster)) return undefined
  const connecting = client.nodes('master').filter((node) => node.status === 'connecting' || node.status === 'connect')
  if (connecting.length === 0) return undefined
  return Promise.all(connecting.map(async (node) => await new Promise<void>((resolve) => {
    const settle = () => {
      node.off('ready', settle).off('close', settle).off('end', settle)
      resolve()
    }
    node.once('ready', settle).once('close', settle).once('end', settle)
  }))).then(() => undefined)
}

/**
 * Replaces connections that have stopped answering. A connection whose oldest command awaiting
 * a reply (its ready check included) has had none for a whole command timeout is presumed dead:
 * a blackholed network, or a half-open connection whose peer is gone, which TCP alone would
 * notice only after minutes of retransmissions. It is closed and reconnected (`disconnect(true)`):
 * the commands on it fail at once (each was answered 503 at its deadline already; none is sent
 * again, as everywhere here), so the queue of commands awaiting replies stays bounded, and the
 * new connection serves as soon as the network does (D43).
 */
function watchForStalls (client: RedisClient, timeoutMs: number): () => void {
  const oldest = new WeakMap<Redis, { command: unknown, since: number }>()
  const timer = setInterval(() => {
    const now = Date.now()
    for (const connection of client instanceof Cluster ? client.nodes() : [client]) {
      const command: unknown = connection.commandQueue.peekFront()
      if (command === undefined || (connection.status !== 'ready' && connection.status !== 'connect')) {
        oldest.delete(connection)
        continue
      }
      const seen = oldest.get(connection)
      if (seen === undefined || seen.command !== command) {
        oldest.set(connection, { command, since: now })
      } else if (now - seen.since >= timeoutMs) {
        oldest.delete(connection)
        connection.disconnect(true)
      }
    }
  }, Math.max(25, Math.floor(timeoutMs / 4)))
  timer.unref()
  return () => { clearInterval(timer) }
}

/**
 * Reports each master whose `maxmemory-policy` may evict keys, once per master and policy, each
 * time the client becomes ready: an evicting Redis drops attributes without a word when full
 * (every key here has a TTL, so even the volatile-* policies pick them). Read from INFO, which
 * the documented ACL allows; a master that does not answer is left alone.
 */
export function onEvictingPolicy (client: RedisClient, report: (node: string, policy: string) => void): void {
  const reported = new Set<string>()
  const check = () => {
    for (const master of mastersOf(client)) {
      const node = `${master.options.host ?? ''}:${master.options.port ?? ''}`
      master.info('memory').then((info) => {
        const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1]
        if (policy === undefined || policy === 'noeviction' || reported.has(`${node} ${policy}`)) return
        reported.add(`${node} ${policy}`)
        report(node, policy)
      }, () => {})
    }
  }
  client.on('ready', check)
}

/** Every master of the client (one for a single server or a Sentinel-managed primary). */
export function mastersOf (client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client]
}
