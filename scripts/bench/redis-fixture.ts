import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Redis } from 'ioredis'

// The Redis test fixture (test/fixtures/redis.ts) for the scripts that run the real stack
// (bench, soak), imported at run time: the Docker build compiles scripts/ without test/, so a
// static import would break `npm run build` there.

export interface RedisFixture {
  readonly port: number
  readonly dir: string
  readonly url: string
  client: () => Redis
  close: () => Promise<void>
}

export interface RedisFixtureModule {
  RedisServer: { start: () => Promise<RedisFixture> }
  freePort: () => Promise<number>
}

export async function loadRedisFixture (root: string): Promise<RedisFixtureModule> {
  return await import(pathToFileURL(join(root, 'test/fixtures/redis.ts')).href) as RedisFixtureModule
}
