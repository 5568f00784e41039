import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { Parser } from '@asyncapi/parser'
import { ASYNCAPI_PATH, renderAsyncapi } from '../scripts/asyncapi.ts'
import { RPC_METHODS } from '../src/jsonrpc/methods.ts'

test('asyncapi.yaml is the one generated from the method table (run npm run asyncapi when this fails)', () => {
  assert.equal(readFileSync(ASYNCAPI_PATH, 'utf8'), renderAsyncapi())
})

test('asyncapi.yaml is a valid AsyncAPI 3.0 document with an operation per method', async () => {
  const { document, diagnostics } = await new Parser().parse(readFileSync(ASYNCAPI_PATH, 'utf8'))
  const errors = diagnostics.filter((diagnostic) => diagnostic.severity === 0)
  assert.deepEqual(errors.map((error) => `${error.path.join('.')}: ${error.message}`), [])
  assert.ok(document !== undefined)
  assert.equal(document.version(), '3.0.0')
  const requests = document.operations().all().filter((operation) => operation.action() === 'receive').flatMap((operation) => operation.messages().all().map((message) => message.name()))
  assert.deepEqual(requests.sort(), [...RPC_METHODS.keys()].sort(), 'one operation per method, with its request message')
})
