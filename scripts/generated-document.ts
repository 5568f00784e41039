import { readFileSync, writeFileSync } from 'node:fs'

/**
 * The command line of a generated document (npm run openapi / asyncapi): writes `fresh` to
 * `path`, or with --check exits 1 with `staleMessage` when the committed file differs.
 */
export function writeOrCheck (path: string, fresh: string, staleMessage: string): void {
  if (!process.argv.includes('--check')) {
    writeFileSync(path, fresh)
    return
  }
  let committed = ''
  try {
    committed = readFileSync(path, 'utf8')
  } catch {}
  if (committed !== fresh) {
    process.stderr.write(`${staleMessage}\n`)
    process.exit(1)
  }
}
