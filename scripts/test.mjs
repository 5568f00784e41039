// Runs every test file under test/ with node:test, after checking that redis-server is there:
// the Redis suites start their own.
//
// SSO_TEST_TOPOLOGIES=off leaves out the suites that start a Redis Cluster, a Sentinel set or
// TLS servers, and the browser suites, naming each: CI runs the whole suite on its first Node
// version and, to stay within its time budget, the rest on the second (.ci/run).
import { spawnSync } from 'node:child_process'
import { globSync } from 'glob'

const TOPOLOGY_SUITES = [
  'test/e2e/cluster.test.ts', 'test/e2e/sentinel.test.ts', 'test/e2e/redis-tls.test.ts', 'test/e2e/swagger-ui.test.ts', 'test/e2e/demo-page.test.ts',
  'test/store/redis-cluster.test.ts', 'test/store/redis-sentinel.test.ts', 'test/src/rekey-cluster.test.ts',
  'test/store/events-two-instances-cluster.test.ts', 'test/e2e/websocket-two-instances-cluster.test.ts', 'test/store/near-cache-cluster.test.ts', 'test/store/near-cache-sentinel.test.ts'
]

const redis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
if (redis.error !== undefined) {
  process.stderr.write('npm test needs redis-server on PATH (the Redis suites start their own on a free port).\n' +
    'Install it: apt-get install -y redis-server (Debian/Ubuntu) or brew install redis (macOS).\n')
  process.exit(1)
}
let files = process.argv.length > 2 ? process.argv.slice(2) : globSync('test/**/*.test.ts').sort()
if (process.env.SSO_TEST_TOPOLOGIES === 'off') {
  const left = files.filter((file) => TOPOLOGY_SUITES.includes(file))
  files = files.filter((file) => !TOPOLOGY_SUITES.includes(file))
  process.stdout.write(`SSO_TEST_TOPOLOGIES=off: not run on Node ${process.versions.node}: ${left.join(', ')}\n`)
}
const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit' })
process.exit(run.status ?? 1)
