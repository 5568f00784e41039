import { after, before } from 'node:test'
import type { Redis } from 'ioredis'
import { RedisSentinelSet, SENTINEL_MASTER_NAME } from '../fixtures/sentinel.ts'
import { nearCacheScenarios, type NearCacheRig } from './near-cache-scenarios.ts'

// The near cache's consistency scenarios on a Sentinel-managed primary with one replica: the
// tracking pair follows the Sentinels to the primary; the disruption is a failover.

let set: RedisSentinelSet
const clients: Redis[] = []
before(async () => { set = await RedisSentinelSet.start() })
after(async () => {
  for (const client of clients) client.disconnect()
  await set.close()
})

const rig = (): NearCacheRig => ({
  connection: { topology: { kind: 'sentinel', sentinels: set.sentinelNodes, name: SENTINEL_MASTER_NAME } },
  nodeOf: async () => {
    const client = set.primaryClient()
    clients.push(client)
    return client
  },
  disrupt: async () => {
    const old = await set.killPrimary()
    await set.waitPromoted(old)
  }
})

nearCacheScenarios('a Sentinel-managed primary', rig)
