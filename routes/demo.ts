import type { FastifyPluginAsync } from 'fastify'

// GET /demo (development only): a page that opens the WebSocket API with a development token and
// shows the user's attributes live. The token comes in the URL fragment (`/demo#<ust>`, never
// sent to the server) or the form; `?app=` picks current_app.

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>sso-attrs: live user attributes</title>
<link rel="stylesheet" href="/demo/demo.css">
</head>
<body>
<h1>User attributes, live</h1>
<form id="login"><input id="ust" name="ust" placeholder="UST: npm run -s token -- --sub alice" autocomplete="off" size="60"><button>Connect</button></form>
<p>Status: <span id="status">not connected</span> <span id="user"></span></p>
<table id="attributes"><thead><tr><th>name</th><th>value</th></tr></thead><tbody></tbody></table>
<h2>Events</h2>
<ol id="events"></ol>
<script src="/demo/demo.js"></script>
</body>
</html>
`

const STYLE = `body { font: 15px system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .3em .6em; text-align: left; }
#status { font-weight: bold; } #events { color: #555; font-size: 13px; }
`

const SCRIPT = `'use strict'
const attributes = new Map()
const $ = (id) => document.getElementById(id)
function render () {
  const body = $('attributes').tBodies[0]
  body.replaceChildren(...[...attributes].sort(([a], [b]) => a < b ? -1 : 1).map(([name, value]) => {
    const row = document.createElement('tr')
    row.dataset.name = name
    for (const text of [name, JSON.stringify(value)]) {
      const cell = document.createElement('td')
      cell.textContent = text
      row.append(cell)
    }
    return row
  }))
}
function log (text) {
  const item = document.createElement('li')
  item.textContent = text
  $('events').prepend(item)
}
function connect (ust) {
  const app = new URLSearchParams(location.search).get('app') || 'CRM'
  const socket = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/current?app=' + encodeURIComponent(app))
  let nextId = 1
  const pending = new Map()
  const call = (method, params) => new Promise((resolve) => {
    const id = nextId++
    pending.set(id, resolve)
    socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }))
  })
  const load = async () => {
    const me = await call('auth.me', [])
    if (me.error) return log('auth.me: ' + me.error.data.reason)
    attributes.clear()
    for (const [name, value] of Object.entries(me.result.attributes)) attributes.set(name, value)
    render()
  }
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data)
    if (data.id !== undefined && pending.has(data.id)) {
      pending.get(data.id)(data)
      pending.delete(data.id)
      return
    }
    if (data.method === 'collection_update') {
      const { msg, fields, id } = data.params
      log(id + ' ' + msg + ' ' + (fields.name || ''))
      if (msg === 'added' || msg === 'changed') {
        if ('value' in fields) attributes.set(fields.name, fields.value)
        else load()
      } else if (msg === 'removed' || msg === 'expired') {
        attributes.delete(fields.name)
      }
      render()
    } else if (data.method === 'connection_closing') {
      log('closing: ' + data.params.code + ' ' + data.params.reason)
    }
  }
  socket.onclose = (event) => { $('status').textContent = 'closed (' + event.code + (event.reason ? ' ' + event.reason : '') + ')' }
  socket.onopen = async () => {
    const login = await call('auth.login_with_token', [ust])
    if (login.result?.response_type !== 'SUCCESS') {
      $('status').textContent = 'token refused'
      return socket.close()
    }
    $('user').textContent = 'as ' + login.result.user_info.sub
    for (const [name, value] of Object.entries(login.result.user_info.attributes)) attributes.set(name, value)
    render()
    const subscription = await call('core.subscribe', ['user.attr'])
    if (subscription.error) {
      // No event feed on this instance: read again every two seconds instead.
      $('status').textContent = 'connected (polling: ' + subscription.error.data.errname + ')'
      setInterval(load, 2000)
    } else {
      $('status').textContent = 'live'
    }
  }
}
$('login').onsubmit = (event) => {
  event.preventDefault()
  connect($('ust').value.trim())
}
if (location.hash.length > 1) connect(decodeURIComponent(location.hash.slice(1)))
`

// The page's own policy: its script and style from this origin, its WebSocket to this origin.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

const demoRoutes: FastifyPluginAsync = async (fastify) => {
  const send = (type: string, body: string) => async (_request: unknown, reply: import('fastify').FastifyReply) =>
    await reply.header('content-security-policy', CSP).type(type).send(body)
  fastify.get('/demo', { schema: { hide: true } }, send('text/html; charset=utf-8', PAGE))
  fastify.get('/demo/demo.js', { schema: { hide: true } }, send('text/javascript; charset=utf-8', SCRIPT))
  fastify.get('/demo/demo.css', { schema: { hide: true } }, send('text/css; charset=utf-8', STYLE))
}

export default demoRoutes
