// Prints a UST from the development issuer: UST=$(npm run -s token -- --sub alice)
import { parseArgs } from 'node:util'
import { loadConfig } from '../src/config.ts'
import { issueDevToken, loadOrCreateDevKeys } from '../src/dev-issuer.ts'

const { values } = parseArgs({
  options: {
    sub: { type: 'string', default: 'alice' },
    sid: { type: 'string' },
    super: { type: 'boolean', default: false },
    ttl: { type: 'string', default: '3600' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (values.help) {
  process.stdout.write('usage: npm run -s token -- [--sub alice] [--sid <session id>] [--super] [--ttl seconds]\n')
  process.exit(0)
}
const config = loadConfig()
const keys = await loadOrCreateDevKeys(config.SSO_DEV_DIR)
process.stdout.write(`${await issueDevToken(keys, {
  sub: values.sub,
  sid: values.sid,
  superUser: values.super,
  ttlSeconds: Number(values.ttl),
  sessionClaim: config.SSO_SESSION_CLAIM,
  rolesClaim: config.SSO_ROLES_CLAIM,
  superUserRole: config.SSO_SUPERUSER_ROLE
})}\n`)
