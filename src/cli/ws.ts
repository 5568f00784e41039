import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { UsageError, print, printError, type Command } from './common.ts'

const HELP = `usage: sso-attrs ws [--url URL] [--app APP] [--follow] <method> [params]

Calls one method of the JSON-RPC WebSocket API and prints its result as JSON; with --follow,
stays connected and prints every notification (collection_update, ...) as one JSON line until
the connection closes or Ctrl-C. The UST comes from the SSO_UST environment variable (not an
option: command lines are visible to other users of the machine).

  export SSO_UST=$(sso-attrs token --sub alice)
  sso-attrs ws user.attr.set '["theme", "dark"]'
  sso-attrs ws auth.me
  sso-attrs ws --follow core.subscribe '["user.attr"]'

options:
  --url <url>   the endpoint (default ws://127.0.0.1:17010/api/current; $SSO_WS_URL)
  --app <app>   current_app of the connection (default CRM; $SSO_APP)
  --follow      after the answer, print notifications until the connection closes
  -h, --help    this text

params is JSON: an array (positional) or an object (named). Exit 0 on a result, 1 on an error
answer (printed to stderr), 2 when the connection fails or closes first.`

export const wsCommand: Command = {
  name: 'ws',
  summary: 'call a method of the WebSocket API, and follow its notifications',
  help: HELP,
  async run (args) {
    let parsed
    try {
      parsed = parseArgs({
        args,
        options: { url: { type: 'string' }, app: { type: 'string' }, follow: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
        strict: true,
        allowPositionals: true
      })
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    const { values, positionals } = parsed
    if (values.help === true) {
      print(HELP)
      return 0
    }
    const [method, paramsText, ...rest] = positionals
    if (method === undefined) throw new UsageError('give a method, such as auth.me')
    if (rest.length > 0) throw new UsageError('give the params as one JSON argument')
    let params: unknown
    if (paramsText !== undefined) {
      try {
        params = JSON.parse(paramsText)
      } catch {
        throw new UsageError(`params must be JSON, not ${paramsText}`)
      }
    }
    const url = new URL(values.url ?? process.env.SSO_WS_URL ?? 'ws://127.0.0.1:17010/api/current')
    url.searchParams.set('app', values.app ?? process.env.SSO_APP ?? 'CRM')
    const ust = process.env.SSO_UST
    const socket = new WebSocket(url, ust === undefined || ust === '' ? {} : { headers: { authorization: `Bearer ${ust}` } })
    return await new Promise<number>((resolve) => {
      let answered = false
      let code = 2
      socket.on('error', (error) => {
        printError(`ws: ${error.message}`)
        resolve(2)
      })
      socket.on('open', () => socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method, ...(params !== undefined ? { params } : {}) })))
      socket.on('message', (data) => {
        const message = JSON.parse(data.toString()) as { id?: unknown, result?: unknown, error?: unknown, method?: string }
        if (!answered && message.id === 1) {
          answered = true
          if (message.error !== undefined) {
            process.stderr.write(`${JSON.stringify(message.error, null, 2)}\n`)
            code = 1
          } else {
            print(JSON.stringify(message.result, null, 2))
            code = 0
          }
          if (!values.follow || code !== 0) socket.close()
          return
        }
        if (message.method !== undefined) print(JSON.stringify(message))
      })
      socket.on('close', (closeCode, reason) => {
        if (values.follow && answered) printError(`connection closed: ${closeCode} ${reason.toString()}`)
        resolve(answered ? code : 2)
      })
      process.once('SIGINT', () => socket.close())
    })
  }
}
