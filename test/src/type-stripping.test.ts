import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'

// tsconfig's erasableSyntaxOnly promises that the sources run under Node's own type stripping
// (no enums, namespaces or parameter properties); this holds the promise on the running Node.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
const stripsByDefault = major > 23 || (major === 23 && minor >= 6)
const canStrip = stripsByDefault || major > 22 || (major === 22 && minor >= 6)

test('the CLI runs straight from its TypeScript sources under Node\'s type stripping', { skip: canStrip ? false : `Node ${process.versions.node} cannot strip types (engines needs >= 22.12)` }, () => {
  const flags = stripsByDefault ? [] : ['--experimental-strip-types', '--no-warnings']
  const run = spawnSync(process.execPath, [...flags, 'src/cli.ts', '--help'], { encoding: 'utf8', timeout: 20_000 })
  assert.equal(run.status, 0, run.stderr)
  assert.match(run.stdout, /^usage: sso-attrs <command>/)
  assert.match(run.stdout, /\bserve\b/)
})
