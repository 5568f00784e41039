import { parseOptions, print, type Command } from './common.ts'

const HELP = `usage: sso-attrs serve [--host <address>] [--port <port>]

Runs the service, configured by its environment (see the README's configuration table, or
check it first with: sso-attrs check-config). SIGTERM or SIGINT drains in-flight requests and
exits. Exit code 78 when the configuration is invalid.

options:
  --host <address>   overrides HOST (default 127.0.0.1)
  --port <port>      overrides PORT (default 17010)
  -h, --help         this text`

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the service',
  help: HELP,
  async run (args) {
    const { values } = parseOptions(args, { host: { type: 'string' }, port: { type: 'string' } })
    if (values.help === true) {
      print(HELP)
      return 0
    }
    // The server reads its configuration from the environment, options included.
    if (values.host !== undefined) process.env.HOST = values.host as string
    if (values.port !== undefined) process.env.PORT = values.port as string
    await import('../server.ts')
    return undefined
  }
}
