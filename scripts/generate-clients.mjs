// npm run client:generate: the two generated clients the e2e tests drive (openapi-typescript's
// types for openapi-fetch, and @hey-api/openapi-ts' SDK), written to test/generated/ (git-ignored).
// Skipped when both are newer than openapi.yaml and package-lock.json (the generators'
// versions), so that a second run never rewrites files a concurrent test run is reading
// (.ci/run runs two Node versions side by side); --force regenerates.
import { spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'

const OUTPUTS = ['test/generated/api.d.ts', 'test/generated/hey-api/sdk.gen.ts']
const INPUTS = ['openapi.yaml', 'package-lock.json']

const newest = Math.max(...INPUTS.map((file) => statSync(file).mtimeMs))
const fresh = OUTPUTS.every((file) => existsSync(file) && statSync(file).mtimeMs >= newest)
if (fresh && !process.argv.includes('--force')) process.exit(0)

const steps = [
  ['node_modules/.bin/openapi-typescript', 'openapi.yaml', '--output', 'test/generated/api.d.ts'],
  ['node_modules/.bin/openapi-ts', '--input', 'openapi.yaml', '--output', 'test/generated/hey-api',
    '--client', '@hey-api/client-fetch', '--silent', '--no-log-file']
]
for (const [command, ...args] of steps) {
  const run = spawnSync(command, args, { stdio: 'inherit' })
  if (run.status !== 0) process.exit(run.status ?? 1)
}
