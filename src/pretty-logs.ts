import { createRequire } from 'node:module'
import type { TransportSingleOptions } from 'pino'
import { isProduction, type Config } from './config.ts'

const require = createRequire(import.meta.url)

function installed (name: string): boolean {
  try {
    require.resolve(name)
    return true
  } catch {
    return false
  }
}

/**
 * Pretty logs for a person at a terminal in development; JSON everywhere else, so that log
 * shippers parse every line. pino-pretty is a dev dependency: where it is not installed
 * (`npm ci --omit=dev`) the logs stay JSON rather than the start failing.
 */
export function prettyTransport (config: Pick<Config, 'NODE_ENV'>, isTTY: boolean, isInstalled: (name: string) => boolean = installed): TransportSingleOptions | undefined {
  if (!isTTY || isProduction(config) || !isInstalled('pino-pretty')) return undefined
  return { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } }
}
