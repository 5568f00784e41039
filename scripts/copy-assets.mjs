// tsc does not copy non-TypeScript files; the Lua scripts travel beside the compiled store.
import { chmodSync, cpSync } from 'node:fs'
cpSync('src/store/redis-scripts', 'dist/src/store/redis-scripts', { recursive: true })
// The package's bin, runnable as ./dist/src/cli.js too (npm sets the mode only when it links it).
chmodSync('dist/src/cli.js', 0o755)
