import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'

// The keys every verifier (USTs, logout tokens) checks signatures with: one per service, so
// that a key the identity provider has just made current is learnt once, for both (D50).

export type KeySource =
  | { kind: 'secret', secret: string }
  | { kind: 'jwks', jwks: JSONWebKeySet }
  | { kind: 'jwks-file', path: string }
  | { kind: 'jwks-url', url: string }

export interface VerificationKeys {
  key: Uint8Array | JWTVerifyGetKey
  algorithms: string[]
}

export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']

/** The key source could not say which keys are valid (JWKS endpoint down, slow, or serving garbage). */
export class KeySourceUnavailable extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'KeySourceUnavailable'
  }
}

export interface RemoteKeySetOptions {
  /** One JWKS request that has not answered by then has failed. */
  timeoutMs: number
  /**
   * After a fetch that brought no new key set (or failed), the next fetch for an unknown `kid`
   * waits until this long after it started: a flood of made-up kids costs one fetch per interval.
   */
  refetchIntervalMs: number
  /** A key set older than this is not used: a key removed at the provider stops verifying by then. */
  maxAgeMs: number
  /** Told of every fetch, for logs and tests. */
  onFetch?: ((outcome: { ok: true, changed: boolean, ms: number } | { ok: false, error: KeySourceUnavailable, ms: number }) => void) | undefined
}

export const DEFAULT_REMOTE_KEY_SET_OPTIONS: RemoteKeySetOptions = { timeoutMs: 2000, refetchIntervalMs: 1000, maxAgeMs: 600_000 }

const MAX_JWKS_BYTES = 512 * 1024

export interface RemoteKeySet extends JWTVerifyGetKey {
  /** How many fetches have started. */
  readonly fetches: () => number
}

/**
 * A remote JWKS, cached. A token whose `kid` is not in the cached set waits for a fetch that
 * starts after it arrived (single-flight: every such token waiting at the time shares it), then
 * is judged on the new set. Fetches start at once while each brings a changed set (a rotation),
 * and at most once per `refetchIntervalMs` otherwise. The set is refreshed in the background
 * once it is half `maxAgeMs` old, and is not used past `maxAgeMs`.
 */
export function createRemoteKeySet (url: URL, options: RemoteKeySetOptions = DEFAULT_REMOTE_KEY_SET_OPTIONS): RemoteKeySet {
  let keys: JWTVerifyGetKey | undefined
  let knownKeys = new Set<string>()
  let keysFetchedAt = -Infinity
  let started = 0
  let latest: { sequence: number, startedAt: number, done: Promise<void> } | undefined
  let queued: Promise<void> | undefined
  let fetching = false
  // Whether the latest fetch brought a different key set than the one before: only then may
  // the next start without waiting for the interval.
  let latestChanged = true
  const clock = () => performance.now()

  async function fetchKeys (startedAt: number): Promise<void> {
    let response: Response
    try {
      response = await fetch(url, { redirect: 'manual', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(options.timeoutMs) })
    } catch (error) {
      throw new KeySourceUnavailable(`JWKS request failed: ${(error as Error).name}`, { cause: error })
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {})
      throw new KeySourceUnavailable(`JWKS endpoint answered ${response.status}`)
    }
    let text: string
    try {
      text = await response.text()
    } catch (error) {
      throw new KeySourceUnavailable('JWKS response broke off', { cause: error })
    }
    if (text.length > MAX_JWKS_BYTES) throw new KeySourceUnavailable('JWKS response is too large')
    let jwks: unknown
    try {
      jwks = JSON.parse(text)
    } catch {
      throw new KeySourceUnavailable('JWKS response is not JSON')
    }
    let next: JWTVerifyGetKey
    try {
      next = createLocalJWKSet(jwks as JSONWebKeySet)
    } catch (error) {
      throw new KeySourceUnavailable('JWKS response is not a key set', { cause: error })
    }
    // "Changed" means a key not in the previous set: a provider that serves its keys in
    // another order, or drops one, has not rotated, and must not lift the rate bound.
    const published = new Set((jwks as JSONWebKeySet).keys.map((key) => JSON.stringify(key)))
    latestChanged = [...published].some((key) => !knownKeys.has(key))
    knownKeys = published
    keys = next
    keysFetchedAt = startedAt
  }

  function start (): Promise<void> {
    const startedAt = clock()
    fetching = true
    const done = fetchKeys(startedAt).then((): void => {
      fetching = false
      options.onFetch?.({ ok: true, changed: latestChanged, ms: clock() - startedAt })
    }, (error: unknown): never => {
      fetching = false
      latestChanged = false
      const unavailable = error instanceof KeySourceUnavailable ? error : new KeySourceUnavailable('JWKS fetch failed', { cause: error })
      options.onFetch?.({ ok: false, error: unavailable, ms: clock() - startedAt })
      throw unavailable
    })
    // Nobody may be waiting (a background refresh); the failure is reported through onFetch.
    done.catch(() => {})
    latest = { sequence: ++started, startedAt, done }
    return done
  }

  /** A fetch that starts after the caller saw `seen` fetches started: joined, or queued. */
  function refresh (seen: number): Promise<void> {
    if (latest !== undefined && latest.sequence > seen) return latest.done
    if (queued !== undefined) return queued
    const turn = async (): Promise<void> => {
      if (latest === undefined) return
      await latest.done.catch(() => {})
      const wait = latestChanged ? 0 : latest.startedAt + options.refetchIntervalMs - clock()
      if (wait > 0) await sleep(wait, undefined, { ref: false })
    }
    // then() runs after this assignment, so a caller arriving before the fetch starts joins it.
    queued = turn().then(() => {
      queued = undefined
      return start()
    })
    return queued
  }

  const getKey = async (...args: Parameters<JWTVerifyGetKey>): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> => {
    const seen = started
    const age = clock() - keysFetchedAt
    if (keys === undefined || age > options.maxAgeMs) {
      await refresh(seen)
    } else if (age > options.maxAgeMs / 2 && queued === undefined && !fetching) {
      refresh(seen).catch(() => {})
    }
    try {
      return await keys!(...args)
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error
    }
    await refresh(seen)
    return await keys!(...args)
  }
  return Object.assign(getKey, { fetches: () => started })
}

export function verificationKeys (source: KeySource, remote: RemoteKeySetOptions = DEFAULT_REMOTE_KEY_SET_OPTIONS): VerificationKeys {
  switch (source.kind) {
    case 'secret':
      return { key: new TextEncoder().encode(source.secret), algorithms: ['HS256'] }
    case 'jwks':
      return { key: createLocalJWKSet(source.jwks), algorithms: ASYMMETRIC_ALGORITHMS }
    case 'jwks-file':
      return { key: createLocalJWKSet(JSON.parse(readFileSync(source.path, 'utf8')) as JSONWebKeySet), algorithms: ASYMMETRIC_ALGORITHMS }
    case 'jwks-url':
      return { key: createRemoteKeySet(new URL(source.url), remote), algorithms: ASYMMETRIC_ALGORITHMS }
  }
}

/** Whether a verification failed because the keys could not be had, not because of the token. */
export function isKeySourceOutage (error: unknown): boolean {
  if (error instanceof KeySourceUnavailable) return true
  // Every verdict on a token itself is a JOSE error; anything else is not the token's fault.
  return !(error instanceof joseErrors.JOSEError)
}
