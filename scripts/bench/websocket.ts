// The WebSocket rows of npm run bench (issue 16): JSON-RPC calls of session.attr.get over one
// connection, a fixed number in flight, and the fan-out of change events to 1,000 subscribers,
// against the same service and Redis as the REST rows.
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { fmt } from './numbers.ts'

export interface WebSocketResult {
  inFlight: number
  calls: number
  errors: number
  seconds: number
  perSecond: number
  p50Ms: number
  p99Ms: number
}

function percentile (sorted: number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!
}

/** Calls session.attr.get(name) for `seconds` (after `warmupSeconds`), keeping `inFlight` calls outstanding. */
export async function measureWebSocketGet (port: number, app: string, ust: string, name: string, options: { seconds: number, warmupSeconds: number, inFlight: number }): Promise<WebSocketResult> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/api/current?app=${encodeURIComponent(app)}`, { headers: { authorization: `Bearer ${ust}` } })
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  const sentAt = new Map<number, number>()
  const latencies: number[] = []
  let nextId = 1
  let errors = 0
  let measuring = false
  let stopping = false
  const request = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'session.attr.get', params: [name] })
  const send = (): void => {
    const id = nextId++
    sentAt.set(id, performance.now())
    socket.send(request.replace('"id":0', `"id":${id}`))
  }
  const done = new Promise<void>((resolve) => {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { id: number, error?: unknown }
      const started = sentAt.get(message.id)
      sentAt.delete(message.id)
      if (measuring && started !== undefined) {
        latencies.push(performance.now() - started)
        if (message.error !== undefined) errors++
      }
      if (!stopping) send()
      else if (sentAt.size === 0) resolve()
    })
  })
  for (let index = 0; index < options.inFlight; index++) send()
  await new Promise((resolve) => setTimeout(resolve, options.warmupSeconds * 1000))
  measuring = true
  const start = performance.now()
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000))
  const seconds = (performance.now() - start) / 1000
  measuring = false
  stopping = true
  await done
  socket.close()
  latencies.sort((a, b) => a - b)
  return { inFlight: options.inFlight, calls: latencies.length, errors, seconds, perSecond: latencies.length / seconds, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) }
}

export function renderWebSocketSection (result: WebSocketResult, fanOut: FanOutResult[]): string {
  const subscribers = fmt(fanOut[0]?.subscribers ?? FAN_OUT_SUBSCRIBERS, 0)
  return [
    '## WebSocket (JSON-RPC 2.0)',
    '',
    'The same service and Redis as above. Calls: one connection authenticated by a Bearer UST on the upgrade, `session.attr.get(name)` of a 100-byte value, a new call sent as each answer arrives.',
    `Fan-out: ${subscribers} connections of one user, each subscribed to \`user.attr\` (one owner, so every write is delivered to all of them); a writer PUTs \`/sso/user/attr\` through REST, keeping 1 or 4 writes outstanding (sent and not yet delivered to every subscriber); latency from sending the PUT to a subscriber receiving the event, over every delivery. The subscribers run in the load generator's process, on its core.`,
    '',
    '| scenario | calls/s | p50 ms | p99 ms | errors |',
    '|---|---:|---:|---:|---:|',
    `| \`session.attr.get\`, one connection, ${result.inFlight} in flight | ${fmt(result.perSecond, 0)} | ${fmt(result.p50Ms, 2)} | ${fmt(result.p99Ms, 2)} | ${result.errors} |`,
    '',
    '| scenario | events/s delivered | writes/s | p50 ms | p99 ms | dropped subscribers | missing events |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...fanOut.map((row) => `| fan-out to ${fmt(row.subscribers, 0)} subscribers of one owner, ${row.inFlight} ${row.inFlight === 1 ? 'write' : 'writes'} outstanding | ${fmt(row.eventsPerSecond, 0)} | ${fmt(row.writesPerSecond, 0)} | ${fmt(row.p50Ms, 2)} | ${fmt(row.p99Ms, 2)} | ${row.dropped} | ${row.missing} |`),
    ''
  ].join('\n')
}

export interface FanOutResult {
  subscribers: number
  /** Writes kept outstanding: sent and not yet delivered to every subscriber. */
  inFlight: number
  writes: number
  deliveries: number
  seconds: number
  writesPerSecond: number
  eventsPerSecond: number
  p50Ms: number
  p99Ms: number
  /** Subscribers the server disconnected (slow consumer, or anything else) during the run. */
  dropped: number
  /** Deliveries of measured writes that never came (0 unless a subscriber dropped). */
  missing: number
}

const FAN_OUT_NAME = 'fanout'
/** Subscribers of the fan-out row (the figure). */
export const FAN_OUT_SUBSCRIBERS = 1000

/**
 * Events/s fan-out: `subscribers` WebSocket connections of one user, each subscribed to
 * `user.attr` (one owner: every write goes to all of them); a writer PUTs /sso/user/attr
 * through REST, keeping `inFlight` writes outstanding until each has reached every subscriber.
 * Latency is from the moment the PUT is sent to each subscriber's receipt of the event.
 */
export async function measureWebSocketFanOut (port: number, app: string, ust: string, options: { subscribers: number, seconds: number, warmupSeconds: number, inFlight: number }): Promise<FanOutResult> {
  const url = `ws://127.0.0.1:${port}/api/current?app=${encodeURIComponent(app)}`
  const sentAt = new Map<number, number>()
  const delivered = new Map<number, number>()
  const latencies: number[] = []
  let measuredFrom = Number.POSITIVE_INFINITY
  let measuredTo = Number.POSITIVE_INFINITY
  let deliveriesInWindow = 0
  let writesInWindow = 0
  let dropped = 0
  let open = 0
  let stopping = false
  let nextSeq = 1
  let outstanding = 0
  let failure: Error | undefined
  let settle: () => void = () => {}
  const settled = new Promise<void>((resolve) => { settle = resolve })

  const write = (): void => {
    const seq = nextSeq++
    outstanding++
    const started = performance.now()
    sentAt.set(seq, started)
    delivered.set(seq, 0)
    if (started >= measuredFrom && started < measuredTo) writesInWindow++
    fetch(`http://127.0.0.1:${port}/sso/user/attr`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ust}`, 'content-type': 'application/json' },
      body: JSON.stringify({ current_app: app, name: FAN_OUT_NAME, value: seq })
    }).then(async (response) => {
      await response.arrayBuffer()
      if (response.status !== 200) throw new Error(`fan-out write: HTTP ${response.status}`)
    }).catch((error: unknown) => {
      failure ??= error as Error
      settle()
    })
  }
  const receive = (seq: number): void => {
    const started = sentAt.get(seq)
    if (started === undefined) return
    const count = (delivered.get(seq) ?? 0) + 1
    delivered.set(seq, count)
    const now = performance.now()
    if (now >= measuredFrom && now < measuredTo) deliveriesInWindow++
    if (started >= measuredFrom && started < measuredTo) latencies.push(now - started)
    if (count < open) return
    // Every subscriber has it: the write is done.
    delivered.delete(seq)
    sentAt.delete(seq)
    outstanding--
    if (!stopping) write()
    else if (outstanding === 0) settle()
  }

  const sockets: WebSocket[] = []
  const opening = Array.from({ length: options.subscribers }, (_, index) => index)
  for (let from = 0; from < opening.length; from += 100) {
    await Promise.all(opening.slice(from, from + 100).map(async () => {
      const socket = new WebSocket(url, { headers: { authorization: `Bearer ${ust}` } })
      sockets.push(socket)
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.on('message', (data) => {
          const message = JSON.parse(data.toString()) as { id?: number, error?: unknown, method?: string, params?: { fields?: { name?: string, value?: unknown } } }
          if (message.id === 1) {
            if (message.error !== undefined) reject(new Error(`core.subscribe: ${JSON.stringify(message.error)}`))
            else resolve()
          } else if (message.method === 'collection_update' && message.params?.fields?.name === FAN_OUT_NAME) {
            receive(message.params.fields.value as number)
          }
        })
        socket.once('open', () => socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'core.subscribe', params: ['user.attr'] })))
      })
      open++
      socket.once('close', () => {
        if (stopping && outstanding === 0) return
        dropped++
        open--
        failure ??= new Error('a subscriber was disconnected during the fan-out')
        settle()
      })
    }))
  }

  for (let index = 0; index < options.inFlight; index++) write()
  await new Promise((resolve) => setTimeout(resolve, options.warmupSeconds * 1000))
  measuredFrom = performance.now()
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000))
  measuredTo = performance.now()
  stopping = true
  const timeout = setTimeout(() => { failure ??= new Error('fan-out: deliveries still missing after 10 s'); settle() }, 10_000)
  await settled
  clearTimeout(timeout)
  let missing = 0
  for (const [seq, count] of delivered) if ((sentAt.get(seq) ?? 0) >= measuredFrom) missing += options.subscribers - count
  for (const socket of sockets) socket.terminate()
  if (failure !== undefined && dropped === 0 && missing === 0) throw failure
  latencies.sort((a, b) => a - b)
  const seconds = (measuredTo - measuredFrom) / 1000
  return {
    subscribers: options.subscribers,
    inFlight: options.inFlight,
    writes: writesInWindow,
    deliveries: deliveriesInWindow,
    seconds,
    writesPerSecond: writesInWindow / seconds,
    eventsPerSecond: deliveriesInWindow / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    dropped,
    missing
  }
}
