import { readFileSync } from 'node:fs'
import { AppError } from './errors.ts'
import { attributeHashPattern, ownerOfAttributeHash, ownerTag } from './store/keys.ts'
import { parseRecord } from './store/redis-store.ts'
import { mastersOf, type RedisClient } from './store/redis-topology.ts'
import type { Owner } from './store/types.ts'
import { ValueCipher, cipherBinding } from './value-cipher.ts'

// Re-encrypts every encrypted attribute value in Redis under the active key (the first of
// SSO_ENCRYPTION_KEYS), while the service keeps running, so that older keys can be removed.
// It SCANs the attribute hashes (an admin tool; no request path scans) on every master,
// sessions' and users' alike (src/store/keys.ts), reads each hash, and writes each
// re-encrypted record back with rekey.lua, which replaces a record only if it is still
// exactly the one that was read. The record keeps its
// version, creation, modification and expiry times: the value did not change, only its
// ciphertext, so no client's if_version fails because of a rekey and last_modified still
// means "last written by a client". A record that changed in between is read again and
// retried; one that is gone, plain or already under the active key by then is "skipped".

const REKEY_SCRIPT = readFileSync(new URL('./store/redis-scripts/rekey.lua', import.meta.url), 'utf8')
const ATTEMPTS = 3
// Bounds of one rekey.lua call (a session may hold up to SSO_MAX_ATTRS_PER_SESSION values).
const ITEMS_PER_CALL = 100
const BYTES_PER_CALL = 1 << 20
const MAX_FAILURES_LISTED = 100

export interface RekeyOptions {
  /** A single Redis or a Cluster (every master is scanned). */
  client: RedisClient
  keyPrefix: string
  cipher: ValueCipher
  /** Count what would be done, write nothing. */
  dryRun?: boolean
  /** SCAN COUNT hint: keys looked at per SCAN call. */
  scanCount?: number
  /** Sessions worked on at once. */
  concurrency?: number
  /** Called after each session with the counts so far. */
  onProgress?: (report: RekeyReport) => void
  /** Stops after the sessions in progress; the report then has `aborted: true`. */
  signal?: AbortSignal
  /** Called between reading a session and writing it back (tests write in between). */
  afterRead?: (key: string) => Promise<void>
}

export interface RekeyFailure {
  /** The owner as in the key's hash tag: a session id, or `u:<user id>` (hashes, no user data). */
  session: string
  name: string
  reason: string
}

export interface RekeyReport {
  activeKid: string
  dryRun: boolean
  aborted: boolean
  /** Redis nodes scanned (the masters of a Cluster). */
  nodes: number
  /** Session attribute hashes read. */
  sessions: number
  /** User attribute hashes read. */
  users: number
  /** Encrypted values seen. */
  encrypted: number
  /** Values re-encrypted under the active key (with dryRun: that would be). */
  rekeyed: number
  /** Values already under the active key. */
  current: number
  /** Values a client changed, deleted or re-encrypted meanwhile: nothing left to do. */
  skipped: number
  /** Values whose own expiry had passed: left for the purge. */
  expired: number
  /** Values that could not be re-encrypted (key not configured, not authentic, still contended). */
  failed: number
  /** Values found under each key id other than the active one. */
  byKid: Record<string, number>
  /** The first failures, for the operator to look at. */
  failures: RekeyFailure[]
}

interface RekeyCommands {
  ssoRekey: (attrs: string, ...args: string[]) => Promise<number[]>
}

interface Candidate {
  name: string
  record: string
  next: string
}

export async function rekey (options: RekeyOptions): Promise<RekeyReport> {
  const { client, keyPrefix, cipher } = options
  const dryRun = options.dryRun === true
  const report: RekeyReport = {
    activeKid: cipher.activeKid,
    dryRun,
    aborted: false,
    nodes: 0,
    sessions: 0,
    users: 0,
    encrypted: 0,
    rekeyed: 0,
    current: 0,
    skipped: 0,
    expired: 0,
    failed: 0,
    byKid: {},
    failures: []
  }
  client.defineCommand('ssoRekey', { numberOfKeys: 1, lua: REKEY_SCRIPT })
  const commands = client as unknown as RekeyCommands
  const pattern = attributeHashPattern(keyPrefix)

  const fail = (session: string, name: string, reason: string): void => {
    report.failed++
    if (report.failures.length < MAX_FAILURES_LISTED) report.failures.push({ session, name, reason })
  }

  /** What to write for one record: undefined when nothing is to be done (counted here). */
  const prepare = (owner: Owner, name: string, record: string, first: boolean): Candidate | undefined => {
    const session = ownerTag(owner)
    let attribute
    try {
      attribute = parseRecord(name, record)
    } catch {
      fail(session, name, 'malformed record')
      return undefined
    }
    if (!attribute.encrypted) {
      if (!first) report.skipped++
      return undefined
    }
    const kid = ValueCipher.kidOf(attribute.payload)
    if (first) {
      report.encrypted++
      if (kid !== cipher.activeKid) report.byKid[kid ?? '(not gcm1)'] = (report.byKid[kid ?? '(not gcm1)'] ?? 0) + 1
    }
    if (kid === cipher.activeKid) {
      if (first) report.current++
      else report.skipped++
      return undefined
    }
    try {
      const payload = cipher.reencrypt(attribute.payload, cipherBinding(owner, name))
      return { name, record, next: record.slice(0, record.length - attribute.payload.length) + payload }
    } catch (error) {
      if (!(error instanceof AppError)) throw error
      fail(session, name, `${error.subStatus.at(-1)!}: ${error.message}`)
      return undefined
    }
  }

  const rekeyOwner = async (key: string): Promise<void> => {
    const owner = ownerOfAttributeHash(keyPrefix, key)
    if (owner === undefined) return
    const session = ownerTag(owner)
    const hash = await client.hgetall(key)
    if (owner.scope === 'session') report.sessions++
    else report.users++
    let pending: Candidate[] = []
    for (const [name, record] of Object.entries(hash)) {
      const candidate = prepare(owner, name, record, true)
      if (candidate !== undefined) pending.push(candidate)
    }
    if (dryRun) {
      report.rekeyed += pending.length
      return
    }
    await options.afterRead?.(key)
    for (let attempt = 1; pending.length > 0; attempt++) {
      const changed: Candidate[] = []
      for (const chunk of chunks(pending)) {
        const results = await commands.ssoRekey(key, ...chunk.flatMap((c) => [c.name, c.record, c.next]))
        chunk.forEach((candidate, index) => {
          const result = Number(results[index])
          if (result === 1) report.rekeyed++
          else if (result === -1) report.expired++
          else changed.push(candidate)
        })
      }
      pending = []
      if (changed.length === 0) break
      if (attempt === ATTEMPTS) {
        for (const candidate of changed) fail(session, candidate.name, `changed concurrently ${ATTEMPTS} times in a row; run rekey again`)
        break
      }
      // Read again what changed under us: a client write is under the active key already,
      // but an expiry-only update keeps the older ciphertext and still needs re-encrypting.
      const records = await client.hmget(key, ...changed.map((candidate) => candidate.name))
      changed.forEach((candidate, index) => {
        const record = records[index]
        if (record === null || record === undefined) {
          report.skipped++
          return
        }
        const next = prepare(owner, candidate.name, record, false)
        if (next !== undefined) pending.push(next)
      })
    }
  }

  if (client.status === 'wait') await client.connect()
  const nodes = mastersOf(client)
  report.nodes = nodes.length
  const concurrency = Math.max(1, options.concurrency ?? 8)
  for (const node of nodes) {
    // A Cluster connects to its nodes lazily.
    if (node.status === 'wait') await node.connect()
    let cursor = '0'
    do {
      if (options.signal?.aborted === true) {
        report.aborted = true
        return report
      }
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', options.scanCount ?? 200, 'TYPE', 'hash')
      cursor = next
      for (let first = 0; first < keys.length; first += concurrency) {
        await Promise.all(keys.slice(first, first + concurrency).map(async (key) => {
          await rekeyOwner(key)
          options.onProgress?.(report)
        }))
      }
    } while (cursor !== '0')
  }
  return report
}

/** Slices of candidates small enough for one script call. */
function * chunks (candidates: Candidate[]): Generator<Candidate[]> {
  let chunk: Candidate[] = []
  let bytes = 0
  for (const candidate of candidates) {
    const size = candidate.record.length + candidate.next.length
    if (chunk.length > 0 && (chunk.length === ITEMS_PER_CALL || bytes + size > BYTES_PER_CALL)) {
      yield chunk
      chunk = []
      bytes = 0
    }
    chunk.push(candidate)
    bytes += size
  }
  if (chunk.length > 0) yield chunk
}

/** One line of counts, for progress and for the final summary. */
export function formatReport (report: RekeyReport): string {
  const verb = report.dryRun ? 'to re-encrypt' : 're-encrypted'
  const scanned = report.users > 0 ? `${report.sessions} sessions and ${report.users} users` : `${report.sessions} sessions`
  return `${scanned} scanned, ${report.encrypted} encrypted values: ${report.rekeyed} ${verb}, ` +
    `${report.current} already under "${report.activeKid}", ${report.skipped} skipped (changed concurrently), ` +
    `${report.expired} expired, ${report.failed} failed`
}
