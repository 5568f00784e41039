// tsc does not copy non-TypeScript files; the Lua scripts travel beside the compiled store.
import { cpSync } from 'node:fs'
cpSync('src/store/redis-scripts', 'dist/src/store/redis-scripts', { recursive: true })
