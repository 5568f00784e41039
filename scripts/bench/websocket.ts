// The WebSocket row of npm run bench (issue 16): JSON-RPC calls of session.attr.get over one
// connection, a fixed number in flight, against the same service and Redis as the REST rows.
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

export function renderWebSocketSection (result: WebSocketResult): string {
  return [
    '## WebSocket (JSON-RPC 2.0)',
    '',
    'The same service and Redis as above; one connection authenticated by a Bearer UST on the upgrade, `session.attr.get(name)` of a 100-byte value, a new call sent as each answer arrives.',
    '',
    '| scenario | calls/s | p50 ms | p99 ms | errors |',
    '|---|---:|---:|---:|---:|',
    `| \`session.attr.get\`, one connection, ${result.inFlight} in flight | ${fmt(result.perSecond, 0)} | ${fmt(result.p50Ms, 2)} | ${fmt(result.p99Ms, 2)} | ${result.errors} |`,
    '',
    'Fan-out of change events to 1,000 subscribers is not measured here yet: it needs the store\'s event feed (issue 16, events work).',
    ''
  ].join('\n')
}
