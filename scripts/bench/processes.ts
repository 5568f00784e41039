import { spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { parseInfo, pin } from './measure.ts'
import type { RedisFixtureModule } from './redis-fixture.ts'

// Everything the bench starts is stopped, and its temp dirs removed, on any exit.

const cleanups: Array<() => Promise<void> | void> = []
const children = new Set<ChildProcess>()
const killOnExit = new Set<number>() // pids not spawned here (redis-server via the fixture)
const dirsOnExit = new Set<string>()

/** Runs `step` at cleanup, the last registered first. */
export function onCleanup (step: () => Promise<void> | void): void {
  cleanups.push(step)
}

export async function cleanup (): Promise<void> {
  while (cleanups.length > 0) {
    const step = cleanups.pop()!
    try {
      await step()
    } catch (error) {
      process.stderr.write(`cleanup: ${(error as Error).message}\n`)
    }
  }
}

/** A temp dir removed at cleanup, or at exit when cleanup never ran. */
export function temporaryDir (dir: string): void {
  dirsOnExit.add(dir)
  onCleanup(() => {
    rmSync(dir, { recursive: true, force: true })
    dirsOnExit.delete(dir)
  })
}

export function installExitHandlers (): void {
  // Last resort when the process leaves without running cleanup (uncaught error, process.exit).
  process.on('exit', () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    for (const pid of killOnExit) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    for (const dir of dirsOnExit) rmSync(dir, { recursive: true, force: true })
  })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping everything\n`)
      cleanup().catch(() => {}).finally(() => process.exit(130))
    })
  }
}

export function log (line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

export interface BenchRedis {
  url: string
  port: number
  /** A client for INFO, MONITOR and DBSIZE: never used by the load. */
  admin: Redis
  version: string
}

/** A redis-server of its own (the test fixture), on the given CPU when pinned. */
export async function startRedis (fixture: RedisFixtureModule, cpu: number | undefined): Promise<BenchRedis> {
  const redisServer = await fixture.RedisServer.start()
  dirsOnExit.add(redisServer.dir)
  onCleanup(async () => {
    await redisServer.close()
    dirsOnExit.delete(redisServer.dir)
  })
  const admin = redisServer.client()
  onCleanup(() => admin.disconnect())
  const redisInfo = parseInfo(await admin.info('server'))
  const redisPid = Number(redisInfo.get('process_id'))
  killOnExit.add(redisPid)
  if (cpu !== undefined) pin(redisPid, cpu)
  const version = redisInfo.get('redis_version') ?? '?'
  log(`redis-server ${version} on port ${redisServer.port} (pid ${redisPid})`)
  return { url: redisServer.url, port: redisServer.port, admin, version }
}

export interface Server {
  name: string
  port: number
  pid: number
  child: ChildProcess
  /** Log lines at error level or worse (pino level >= 50) so far. */
  errorLines: () => number
  stop: () => Promise<void>
}

/** Starts `node <args>` in `cwd` (under taskset on `cpu` when given) and waits until it answers. */
export async function startServer (name: string, args: string[], env: Record<string, string>, port: number, cpu: number | undefined, cwd: string): Promise<Server> {
  const command = cpu === undefined ? process.execPath : 'taskset'
  const argv = cpu === undefined ? args : ['-c', String(cpu), process.execPath, ...args]
  // taskset execs node in place, so the pid is the server's own.
  const child = spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let output = ''
  let errorLines = 0
  let shown = 0
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000)
    for (const line of chunk.toString().split('\n')) {
      if (line.trim() === '') continue
      const level = /"level":(\d+)/.exec(line)
      if (level !== null && Number(level[1]) >= 50) errorLines++
      // A server in trouble under load logs the same error thousands of times: show a few.
      if (shown++ < 20) process.stderr.write(`[${name}] ${line.slice(0, 600)}\n`)
      else if (shown === 21) process.stderr.write(`[${name}] (more log lines not shown; errors are counted in the report)\n`)
    }
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
    children.delete(child)
  }
  onCleanup(stop)

  const deadline = Date.now() + 20_000
  const probe = name === 'service' ? '/readyz' : '/healthz'
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited at start (${child.exitCode ?? child.signalCode}):\n${output}`)
    try {
      const res = await fetch(`http://127.0.0.1:${port}${probe}`)
      if (res.ok) break
    } catch {}
    if (Date.now() > deadline) throw new Error(`${name} did not become ready on port ${port}:\n${output}`)
    await sleep(100)
  }
  return { name, port, pid: child.pid!, child, errorLines: () => errorLines, stop }
}
