import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { parse } from 'yaml'
import { OPENAPI_PATH } from '../../scripts/openapi.ts'
import type { App } from '../../src/app.ts'
import { RedisServer } from '../fixtures/redis.ts'
import { build } from '../helper.ts'

// The service the generated clients of test/e2e/generated-client*.test.ts talk to: on a real
// redis-server, listening at the document's development server (servers[0]), so that the
// clients use the base URL the document gives them and nothing else.

export const MAX_VALUE_BYTES = 1024
/** Per caller and minute; the scenarios stay under it except the test that wants a 429. */
export const RATE_LIMIT_MAX = 60
/** SSO_RATE_LIMIT_WINDOW (the default), in ms: windows are aligned to the epoch. */
const RATE_LIMIT_WINDOW_MS = 60_000

/**
 * Waits, when the current rate-limit window ends within 10 s, for the next one: a test that
 * spends the whole budget must not see the window roll over halfway (its count starts again).
 */
export async function awayFromWindowEdge (): Promise<void> {
  const left = RATE_LIMIT_WINDOW_MS - (Date.now() % RATE_LIMIT_WINDOW_MS)
  if (left < 10_000) await new Promise((resolve) => setTimeout(resolve, left + 50))
}

const document = parse(readFileSync(OPENAPI_PATH, 'utf8')) as { servers: Array<{ url: string }> }
export const DEVELOPMENT_SERVER = document.servers[0]!.url

export interface Service {
  app: App
  /** Stops the redis-server under the service: every store call fails from then on (503). */
  stopRedis: () => Promise<void>
  close: () => Promise<void>
}

/**
 * Starts the service on the development server's host and port. Both generated-client suites
 * need that port and may run at once: a suite waits (up to a minute) for the other to finish.
 */
export async function startService (): Promise<Service> {
  const { hostname, port } = new URL(DEVELOPMENT_SERVER)
  const redis = await RedisServer.start()
  const deadline = Date.now() + 60_000
  for (;;) {
    const app = await build(undefined, {
      SSO_STORE: 'redis',
      REDIS_URL: redis.url,
      SSO_KEY_PREFIX: `client-${randomBytes(4).toString('hex')}:`,
      SSO_MAX_VALUE_BYTES: MAX_VALUE_BYTES,
      SSO_RATE_LIMIT_MAX: RATE_LIMIT_MAX
    })
    try {
      await app.listen({ host: hostname, port: Number(port) })
    } catch (error) {
      await app.close()
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > deadline) {
        await redis.close()
        throw new Error(`cannot listen at ${DEVELOPMENT_SERVER}, the document's development server: ${String(error)}`)
      }
      await sleep(250)
      continue
    }
    return {
      app,
      stopRedis: async () => { await redis.stop() },
      close: async () => {
        await app.close()
        await redis.close()
      }
    }
  }
}
