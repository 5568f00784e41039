import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fmt } from './numbers.ts'

// --profile: where the service's CPU time goes during the measured rounds.

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number } }
interface CpuProfile { nodes: ProfileNode[], startTime: number, samples?: number[], timeDeltas?: number[] }

export interface ProfileWindow { start: number, end: number }

/** Self time by area and function, counting only samples inside `window` (the measured rounds). */
function summarizeProfile (file: string, window: ProfileWindow, root: string): string[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  let at = profile.startTime
  let outside = 0
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0
    const micros = deltas[i + 1] ?? 0
    if (at < window.start || at > window.end) {
      outside += micros
      continue
    }
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + micros)
  }
  const byFunction = new Map<string, number>()
  const byArea = new Map<string, number>()
  let busy = 0
  let idle = 0
  for (const [id, micros] of self) {
    const frame = byId.get(id)!.callFrame
    if (frame.functionName === '(idle)') {
      idle += micros
      continue
    }
    busy += micros
    const url = frame.url
    let area: string
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
    if (pkg !== null) area = pkg[1]!
    else if (url.startsWith('node:')) area = url
    else if (url.startsWith('file://')) area = `sso-attrs ${relative(root, fileURLToPath(url))}`
    else area = frame.functionName.startsWith('(') ? frame.functionName : '(native)'
    byArea.set(area, (byArea.get(area) ?? 0) + micros)
    const where = url === '' ? '' : ` ${pkg !== null ? pkg[1]! + '/' + basename(url) : url.startsWith('file://') ? relative(root, fileURLToPath(url)) : url}:${frame.lineNumber + 1}`
    const key = `${frame.functionName === '' ? '(anonymous)' : frame.functionName}${where}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + micros)
  }
  const top = (map: Map<string, number>, n: number) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, micros]) => `| ${name.replace(/\|/g, '\\|')} | ${fmt(micros / 1000)} | ${fmt((100 * micros) / busy, 1)} % |`)
  return [
    `Service process during the measured rounds only (start-up, population and warm-up left out: ${fmt(outside / 1e6, 1)} s of samples): ` +
      `busy ${fmt(busy / 1e6, 1)} s, idle ${fmt(idle / 1e6, 1)} s (idle includes the baseline's turns). Self time:`,
    '',
    '| package / module | self ms | of busy |',
    '|---|---:|---:|',
    ...top(byArea, 15),
    '',
    '| function | self ms | of busy |',
    '|---|---:|---:|',
    ...top(byFunction, 25)
  ]
}

/**
 * The report's profile section from the .cpuprofile node wrote to `profileDir` (the service
 * must have exited); a copy goes to `keepAs` when given.
 */
export function profileSection (profileDir: string, window: ProfileWindow, root: string, keepAs: string | undefined): string[] {
  const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) return ['(no profile was written)']
  const lines = summarizeProfile(join(profileDir, file), window, root)
  if (keepAs !== undefined) {
    mkdirSync(dirname(keepAs), { recursive: true })
    copyFileSync(join(profileDir, file), keepAs)
    lines.push('', `Profile kept in ${keepAs}.`)
  }
  return lines
}
