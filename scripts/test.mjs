// Runs every test file under test/ with node:test (Node 20 has no test-file globbing),
// after checking that redis-server is there: the Redis suites start their own.
import { spawnSync } from 'node:child_process'
import { globSync } from 'glob'

const redis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
if (redis.error !== undefined) {
  process.stderr.write('npm test needs redis-server on PATH (the Redis suites start their own on a free port).\n' +
    'Install it: apt-get install -y redis-server (Debian/Ubuntu) or brew install redis (macOS).\n')
  process.exit(1)
}
const files = process.argv.length > 2 ? process.argv.slice(2) : globSync('test/**/*.test.ts').sort()
const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit' })
process.exit(run.status ?? 1)
