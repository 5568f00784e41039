import { after, before, test } from 'node:test'
import type { Redis } from 'ioredis'
import { RedisStore } from '../../src/store/redis-store.ts'
import { RedisCluster } from '../fixtures/cluster.ts'
import { LIMITS } from './contract.ts'
import { twoInstances } from './events-instances.ts'

let cluster: RedisCluster
before(async () => { cluster = await RedisCluster.start() })
after(async () => { await cluster.close() })

test('two instances on a 3-master Cluster: A\'s writes reach B\'s subscribers on every master; killed subscriber connections lose and repeat nothing', async (t) => {
  const masters: Redis[] = []
  for (const role of await cluster.roles()) if (role.role === 'master') masters.push(cluster.nodeClient(role.port))
  t.after(() => { for (const master of masters) master.disconnect() })
  await twoInstances(t, (keyPrefix) => new RedisStore({
    topology: { kind: 'cluster', nodes: cluster.startupNodes },
    keyPrefix,
    commandTimeoutMs: 2_000,
    connectTimeoutMs: 2_000,
    ...LIMITS
  }), () => masters)
})
