// Writes openapi.yaml from the route schemas: npm run openapi (or `-- --check` to fail on drift).
import { fileURLToPath } from 'node:url'
import { writeOrCheck } from './generated-document.ts'
import { buildApp } from '../src/app.ts'
import { defaultConfig } from '../src/config.ts'

export const OPENAPI_PATH = fileURLToPath(new URL('../openapi.yaml', import.meta.url))

// Every setting the app would otherwise default from .dev/ is given, so nothing is written
// to disk and the document depends on the route schemas only.
const DUMMY_CONFIG = defaultConfig({
  LOG_LEVEL: 'silent',
  SSO_STORE: 'memory',
  SSO_JWT_SECRET: 'openapi-dummy-secret-of-at-least-32-bytes',
  SSO_ISSUER: 'https://openapi.invalid',
  SSO_APPS: 'CRM',
  SSO_ENCRYPTION_KEYS: `dummy:${Buffer.alloc(32).toString('base64url')}`
})

export async function renderOpenapi (): Promise<string> {
  const app = await buildApp(DUMMY_CONFIG)
  try {
    await app.ready()
    return app.swagger({ yaml: true })
  } finally {
    await app.close()
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeOrCheck(OPENAPI_PATH, await renderOpenapi(), 'openapi.yaml is out of date with the route schemas: run npm run openapi')
}
