import { parseOptions, print, printError, type Command } from './common.ts'

const HELP = `usage: sso-attrs rekey

Re-encrypts stored values under the first key of SSO_ENCRYPTION_KEYS, so that older keys can
be dropped. Not implemented yet.`

export const rekeyCommand: Command = {
  name: 'rekey',
  summary: 're-encrypt stored values under the newest key (not implemented yet)',
  help: HELP,
  async run (args) {
    const { values } = parseOptions(args, {})
    if (values.help === true) {
      print(HELP)
      return 0
    }
    printError('rekey is not implemented yet')
    return 2
  }
}
