import { MemoryStore } from '../../src/store/memory-store.ts'
import { storeContract } from './contract.ts'

storeContract('memory', async (limits) => ({ store: new MemoryStore(limits) }))
