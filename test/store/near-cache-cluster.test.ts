import { createRequire } from 'node:module'
import { after, before } from 'node:test'
import type { Redis } from 'ioredis'
import { RedisCluster } from '../fixtures/cluster.ts'
import { nearCacheScenarios, type NearCacheRig } from './near-cache-scenarios.ts'

// The near cache's consistency scenarios on a real 3-master, 3-replica Redis Cluster: one
// tracking pair per master, found by the key's slot; the disruption is a failover (the master
// of the session's slot is killed and its replica takes over).

const slotOf = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number

let cluster: RedisCluster
const clients: Redis[] = []
before(async () => { cluster = await RedisCluster.start() })
after(async () => {
  for (const client of clients) client.disconnect()
  await cluster.close()
})

const rig = (): NearCacheRig => ({
  connection: { topology: { kind: 'cluster', nodes: cluster.startupNodes } },
  nodeOf: async (key) => {
    const client = cluster.nodeClient(await cluster.masterOf(slotOf(key)))
    clients.push(client)
    return client
  },
  disrupt: async (key) => {
    const slot = slotOf(key)
    const old = await cluster.killMasterOf(slot)
    await cluster.waitPromoted(slot, old)
  }
})

nearCacheScenarios('a Redis Cluster', rig)
