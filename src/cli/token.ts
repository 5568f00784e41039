import { ConfigError, isProduction, loadConfig } from '../config.ts'
import { issueDevToken, loadOrCreateDevKeys } from '../dev-issuer.ts'
import { EX_CONFIG, UsageError, parseOptions, print, printError, type Command } from './common.ts'

const HELP = `usage: sso-attrs token [--sub alice] [--sid <session id>] [--super] [--ttl <seconds>]
       npm run -s token -- [the same options]

Prints a UST (a signed JWT) from the development issuer, and nothing else, so that
  UST=$(npm run -s token -- --sub alice)
works. The issuer's key pair is the one the service generates in SSO_DEV_DIR (default .dev/)
when no UST key source is configured; run it in the service's folder, with its environment.

options:
  --sub <subject>   the user (default alice)
  --sid <id>        the session id; without it every call starts a new session
  --super           add the super-user role (SSO_SUPERUSER_ROLE at SSO_ROLES_CLAIM)
  --ttl <seconds>   lifetime of the token (default 3600)
  -h, --help        this text`

export const tokenCommand: Command = {
  name: 'token',
  summary: 'print a UST from the development issuer',
  help: HELP,
  async run (args) {
    const { values } = parseOptions(args, {
      sub: { type: 'string', default: 'alice' },
      sid: { type: 'string' },
      super: { type: 'boolean', default: false },
      ttl: { type: 'string', default: '3600' }
    })
    if (values.help === true) {
      print(HELP)
      return 0
    }
    const ttlSeconds = Number(values.ttl)
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new UsageError(`--ttl must be a positive integer of seconds, not "${values.ttl}"`)
    let config
    try {
      config = loadConfig()
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      printError(error.message)
      return EX_CONFIG
    }
    if (isProduction(config)) {
      printError('the development issuer is for development only (NODE_ENV=production)')
      return EX_CONFIG
    }
    const keySource = (['SSO_JWKS_URL', 'SSO_JWKS_FILE', 'SSO_JWT_SECRET'] as const).find((name) => config[name] !== undefined)
    if (keySource !== undefined) printError(`warning: ${keySource} is set, so the service does not accept development tokens`)
    const keys = await loadOrCreateDevKeys(config.SSO_DEV_DIR)
    print(await issueDevToken(keys, {
      sub: values.sub as string,
      sid: values.sid as string | undefined,
      superUser: values.super === true,
      ttlSeconds,
      sessionClaim: config.SSO_SESSION_CLAIM,
      rolesClaim: config.SSO_ROLES_CLAIM,
      superUserRole: config.SSO_SUPERUSER_ROLE
    }))
    return 0
  }
}
