#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { checkConfigCommand } from './cli/check-config.ts'
import { EX_USAGE, print, printError, runCommand, type Command } from './cli/common.ts'
import { keygenCommand } from './cli/keygen.ts'
import { rekeyCommand } from './cli/rekey.ts'
import { serveCommand } from './cli/serve.ts'
import { tokenCommand } from './cli/token.ts'
import { wsCommand } from './cli/ws.ts'

const COMMANDS: Command[] = [serveCommand, tokenCommand, keygenCommand, checkConfigCommand, rekeyCommand, wsCommand]

/** The package version, from src/ under tsx and from dist/src/ once compiled. */
function version (): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'sso-attrs') return pkg.version ?? 'unknown'
    } catch {}
  }
  return 'unknown'
}

function usage (): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length))
  return `usage: sso-attrs <command> [options]

Attributes of single-sign-on sessions, over REST, on Redis.

commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`).join('\n')}

sso-attrs <command> --help tells more about each. Settings come from the environment
(the README's configuration table).`
}

async function main (argv: string[]): Promise<number | undefined> {
  const [name, ...args] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((command) => command.name === args[0]) : undefined
    if (name === undefined) {
      process.stderr.write(`${usage()}\n`)
      return EX_USAGE
    }
    print(topic?.help ?? usage())
    return 0
  }
  if (name === '--version' || name === '-v') {
    print(version())
    return 0
  }
  const command = COMMANDS.find((candidate) => candidate.name === name)
  if (command === undefined) {
    printError(`unknown command "${name}"\n\n${usage()}`)
    return EX_USAGE
  }
  return await runCommand(command, args)
}

const code = await main(process.argv.slice(2))
if (code !== undefined) process.exitCode = code
