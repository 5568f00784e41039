import { randomBytes } from 'node:crypto'
import { ConfigError, parseEncryptionKeys } from '../config.ts'
import { UsageError, parseOptions, print, type Command } from './common.ts'

const HELP = `usage: sso-attrs keygen [--kid <key id>]

Prints a new encryption key in the SSO_ENCRYPTION_KEYS format, kid:key, where key is 32
random bytes in base64url. To rotate, put the new key first (it encrypts from then on) and
keep the old ones after it (they still decrypt):
  SSO_ENCRYPTION_KEYS=<new>,<old>

options:
  --kid <key id>   1 to 64 characters of [A-Za-z0-9_-] (default: k<date>-<random>)
  -h, --help       this text`

/** A key id that sorts by creation day and does not collide with one made the same day. */
function defaultKid (): string {
  return `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(2).toString('hex')}`
}

export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'print a new encryption key (kid:key) for SSO_ENCRYPTION_KEYS',
  help: HELP,
  async run (args) {
    const { values } = parseOptions(args, { kid: { type: 'string' } })
    if (values.help === true) {
      print(HELP)
      return 0
    }
    const entry = `${(values.kid as string | undefined) ?? defaultKid()}:${randomBytes(32).toString('base64url')}`
    try {
      parseEncryptionKeys(entry)
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(`--kid: ${error.problems.join('; ')}`)
      throw error
    }
    print(entry)
    return 0
  }
}
