import { parseArgs, type ParseArgsConfig } from 'node:util'

// Exit codes from sysexits(3), as the server uses for a bad configuration.
export const EX_USAGE = 64
export const EX_CONFIG = 78

export interface Command {
  name: string
  /** One line for `sso-attrs --help`. */
  summary: string
  /** The whole text of `sso-attrs <name> --help`. */
  help: string
  /** Resolves to the exit code, or to undefined when the command keeps running (serve). */
  run: (args: string[]) => Promise<number | undefined>
}

/** A mistake on the command line: the message and the command's usage go to stderr, exit 64. */
export class UsageError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** parseArgs in strict mode, with `--help`/`-h` added and its errors turned into UsageError. */
export function parseOptions<T extends NonNullable<ParseArgsConfig['options']>> (args: string[], options: T) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h', default: false } }, strict: true, allowPositionals: false })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

export function print (text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
}

export function printError (text: string): void {
  process.stderr.write(`sso-attrs: ${text.endsWith('\n') ? text : `${text}\n`}`)
}

/** Runs a command; a usage mistake prints the message and the command's help, and exits 64. */
export async function runCommand (command: Command, args: string[]): Promise<number | undefined> {
  try {
    return await command.run(args)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    printError(`${command.name}: ${error.message}\n\n${command.help}`)
    return EX_USAGE
  }
}
