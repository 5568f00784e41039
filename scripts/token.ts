// Prints a UST from the development issuer: UST=$(npm run -s token -- --sub alice)
// The same command as `sso-attrs token`.
import { runCommand } from '../src/cli/common.ts'
import { tokenCommand } from '../src/cli/token.ts'

process.exitCode = await runCommand(tokenCommand, process.argv.slice(2)) ?? 0
