import assert from 'node:assert/strict'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import type { Config } from '../../src/config.ts'
import { build } from '../helper.ts'

// Helpers for the end-to-end suites: an app listening on a real loopback port, and two ways
// to call it: fetch for ordinary requests, node:http for what fetch cannot send (a GET with
// a body, raw bytes, odd headers).

export interface Envelope {
  cid: string
  status: 'ok' | 'error'
  sub_status?: string[]
  message?: string
  details?: Array<{ path: string, message: string }>
  found?: boolean
  name?: string
  value?: unknown
  version?: number
  creation_time?: string
  last_modified?: string
  expiration_time?: string | null
  is_encrypted?: boolean
  deleted?: boolean
  store?: string
  result?: unknown
}

export interface Reply {
  status: number
  headers: IncomingHttpHeaders
  text: string
  /** The parsed body when it is JSON, else undefined. */
  body: Envelope | undefined
  /** Milliseconds from sending the request to the end of the response. */
  ms: number
}

export interface Listening {
  app: Awaited<ReturnType<typeof build>>
  base: string
  port: number
}

/** Builds the app with the test configuration and listens on a free loopback port. */
export async function listen (t: TestContext | undefined, overrides: Partial<Config> = {}): Promise<Listening> {
  const app = await build(t, overrides)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  return { app, base: `http://127.0.0.1:${port}`, port }
}

function parse (text: string): Envelope | undefined {
  try {
    return JSON.parse(text) as Envelope
  } catch {
    return undefined
  }
}

export interface CallOptions {
  ust?: string
  body?: unknown
  headers?: Record<string, string>
  signal?: AbortSignal
}

/** An ordinary JSON call through global fetch. */
export async function call (base: string, method: string, path: string, options: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.ust !== undefined) headers.authorization = `Bearer ${options.ust}`
  let body: string | undefined
  if (options.body !== undefined) {
    body = JSON.stringify(options.body)
    headers['content-type'] ??= 'application/json'
  }
  const started = performance.now()
  const response = await fetch(`${base}${path}`, { method, headers, body, signal: options.signal ?? AbortSignal.timeout(10_000) })
  const text = await response.text()
  const ms = performance.now() - started
  return { status: response.status, headers: Object.fromEntries(response.headers), text, body: parse(text), ms }
}

export interface RawOptions {
  method?: string
  path: string
  headers?: Record<string, string | number>
  body?: string | Buffer
  timeoutMs?: number
}

/** A request through node:http on a fresh connection: any method with any body, raw bytes. */
export async function raw (port: number, options: RawOptions): Promise<Reply> {
  const started = performance.now()
  return await new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: options.method ?? 'GET',
      path: options.path,
      headers: options.headers,
      agent: false,
      timeout: options.timeoutMs ?? 10_000
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parse(text), ms: performance.now() - started })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms: ${options.method ?? 'GET'} ${options.path.slice(0, 80)}`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

/** Raw bytes written on a fresh TCP connection; the reply is read until the server closes it. */
export async function rawSocket (port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<Reply> {
  const started = performance.now()
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`the server neither answered nor closed within ${timeoutMs} ms`)))
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => {
      const response = Buffer.concat(chunks).toString('utf8')
      const split = response.indexOf('\r\n\r\n')
      const head = split === -1 ? response : response.slice(0, split)
      const [statusLine, ...headerLines] = head.split('\r\n')
      const headers: IncomingHttpHeaders = {}
      for (const line of headerLines) {
        const colon = line.indexOf(':')
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      const text = split === -1 ? '' : response.slice(split + 4)
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0)
      resolve({ status, headers, text, body: parse(text), ms: performance.now() - started })
    })
    socket.end(bytes)
  })
}

/** A JSON body sent with any method, GET included (as Zato clients do). */
export async function rawJson (port: number, method: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const payload = Buffer.from(JSON.stringify(body))
  return await raw(port, { method, path, body: payload, headers: { 'content-type': 'application/json', 'content-length': payload.length, ...headers } })
}

/** The reply is a success envelope. */
export function assertOk (reply: Reply, what = ''): Envelope {
  assert.equal(reply.status, 200, `${what} ${reply.status} ${reply.text.slice(0, 300)}`)
  assert.ok(reply.body !== undefined, `${what} body is not JSON: ${reply.text.slice(0, 200)}`)
  assert.equal(reply.body.status, 'ok', what)
  assertCid(reply, what)
  return reply.body
}

/** The reply is an error envelope with this HTTP status and sub_status. */
export function assertError (reply: Reply, status: number, subStatus: string, what = ''): Envelope {
  assert.equal(reply.status, status, `${what} ${reply.status} ${reply.text.slice(0, 300)}`)
  assert.ok(reply.body !== undefined, `${what} body is not JSON: ${reply.text.slice(0, 200)}`)
  assert.equal(reply.body.status, 'error', what)
  assert.deepEqual(reply.body.sub_status, [subStatus], what)
  assertCid(reply, what)
  return reply.body
}

function assertCid (reply: Reply, what: string): void {
  const cid = reply.body?.cid
  assert.ok(typeof cid === 'string' && cid.length >= 8, `${what} no cid in ${reply.text.slice(0, 200)}`)
  assert.equal(reply.headers['x-cid'], cid, `${what} X-Cid header differs from the body's cid`)
  assert.match(String(reply.headers['content-type']), /^application\/json/, what)
}

/** Never a 5xx; an error envelope with a cid (or a success envelope). */
export function assertEnvelope (reply: Reply, what = ''): Envelope {
  assert.ok(reply.status < 500, `${what}: ${reply.status} ${reply.text.slice(0, 300)}`)
  assert.ok(reply.body !== undefined, `${what}: body is not JSON: ${reply.status} ${reply.text.slice(0, 200)}`)
  assert.ok(reply.body.status === 'ok' || reply.body.status === 'error', `${what}: no status in ${reply.text.slice(0, 200)}`)
  if (reply.body.status === 'error') {
    assert.ok(Array.isArray(reply.body.sub_status) && reply.body.sub_status.length > 0, `${what}: no sub_status`)
    assert.ok(reply.status >= 400, `${what}: error envelope with ${reply.status}`)
  }
  assertCid(reply, what)
  return reply.body
}
