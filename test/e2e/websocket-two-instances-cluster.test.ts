import { after, before, test } from 'node:test'
import { RedisCluster } from '../fixtures/cluster.ts'
import { twoInstances } from './websocket-instances.ts'

// Two service instances on a 3-master Redis Cluster, a WebSocket subscriber on B
// (websocket-instances.ts). A topology suite (scripts/test.mjs).

let cluster: RedisCluster
before(async () => { cluster = await RedisCluster.start() })
after(async () => { await cluster.close() })

test('two instances on a 3-master Cluster: REST writes through A reach a WebSocket subscriber on B; killed twice and back with since, it loses and repeats nothing; a logout through A ends B\'s connection', { timeout: 30_000 }, async (t) => {
  await twoInstances(t, { SSO_STORE: 'redis', REDIS_CLUSTER_NODES: cluster.seeds })
})
