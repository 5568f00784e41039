// Writes asyncapi.yaml, the AsyncAPI 3.0 description of the JSON-RPC WebSocket API, from the
// method table (src/jsonrpc/methods.ts, itself built on the operation table of src/operations/):
// npm run asyncapi (or `-- --check` to fail on drift).
import { fileURLToPath } from 'node:url'
import { writeOrCheck } from './generated-document.ts'
import type { TSchema } from 'typebox'
import { stringify } from 'yaml'
import { CLOSE } from '../src/jsonrpc/connection.ts'
import { RPC_METHODS, SUBSCRIBE_EVENTS } from '../src/jsonrpc/methods.ts'
import { ERRNO, RPC_CODES } from '../src/jsonrpc/protocol.ts'
import { ERROR_CATALOG } from '../src/errors.ts'

export const ASYNCAPI_PATH = fileURLToPath(new URL('../asyncapi.yaml', import.meta.url))

type Schema = Record<string, unknown>

/** A TypeBox schema as plain JSON Schema (draft-07, AsyncAPI's default schema format). */
function plain (schema: TSchema): Schema {
  return JSON.parse(JSON.stringify(schema)) as Schema
}

const key = (method: string): string => method.replace(/[._]([a-z])/g, (_match, letter: string) => letter.toUpperCase())

const RequestId = { oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'null' }], description: 'Echoed in the answer; absent: a notification, not answered.' }

const ErrorSchema: Schema = {
  type: 'object',
  required: ['jsonrpc', 'id', 'error'],
  properties: {
    jsonrpc: { const: '2.0' },
    id: RequestId,
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'integer', enum: Object.values(RPC_CODES), description: '-32700 parse error, -32600 invalid request, -32601 unknown method, -32602 invalid params, -32001 call error.' },
        message: { type: 'string' },
        data: {
          type: 'object',
          properties: {
            error: { type: 'integer', description: 'The errno number of errname.' },
            errname: { type: 'string', enum: Object.keys(ERRNO) },
            reason: { type: 'string', examples: ['[EINVAL] /data/1/expiration must be integer or must be null'] },
            sub_status: { type: 'array', items: { type: 'string', enum: Object.keys(ERROR_CATALOG) }, description: 'The REST API\'s sub_status codes.' },
            details: {
              type: 'array',
              items: { type: 'object', properties: { path: { type: 'string', description: 'JSON Pointer into the call\'s fields (their REST names).' }, message: { type: 'string' } } }
            }
          }
        }
      }
    }
  }
}

export function asyncapiDocument (): Schema {
  const messages: Record<string, Schema> = {}
  const operations: Record<string, Schema> = {}
  const channelRef = { $ref: '#/channels/api' }
  messages.error = { name: 'error', title: 'Error answer', payload: ErrorSchema }
  for (const method of RPC_METHODS.values()) {
    const positional: Schema = {
      type: 'array',
      // draft-07 tuples: one schema per position (an empty list is not a valid `items`).
      ...(method.params.length > 0 ? { items: method.params.map((param) => plain(param.schema)), additionalItems: false } : { maxItems: 0 }),
      minItems: method.params.filter((param) => param.required).length,
      description: `Positional: ${method.params.map((param) => param.name).join(', ') || 'none'}.`
    }
    const named: Schema = {
      type: 'object',
      properties: Object.fromEntries(method.params.map((param) => [param.name, plain(param.schema)])),
      description: method.name.includes('.attr.') ? 'Or by name: the REST fields (name or data, value, and the options\' fields at the top level).' : 'Or by name.'
    }
    messages[`${key(method.name)}Request`] = {
      name: method.name,
      title: method.name,
      summary: method.summary,
      payload: {
        type: 'object',
        required: ['jsonrpc', 'method'],
        properties: { jsonrpc: { const: '2.0' }, id: RequestId, method: { const: method.name }, params: { oneOf: [positional, named] } },
        additionalProperties: false
      }
    }
    messages[`${key(method.name)}Result`] = {
      name: `${method.name} result`,
      title: `${method.name} result`,
      payload: { type: 'object', required: ['jsonrpc', 'id', 'result'], properties: { jsonrpc: { const: '2.0' }, id: RequestId, result: plain(method.result) } }
    }
    operations[key(method.name)] = {
      action: 'receive',
      channel: channelRef,
      title: method.name,
      summary: method.summary,
      ...(method.public ? {} : { security: [{ $ref: '#/components/securitySchemes/ust' }] }),
      messages: [{ $ref: `#/channels/api/messages/${key(method.name)}Request` }],
      reply: { channel: channelRef, messages: [{ $ref: `#/channels/api/messages/${key(method.name)}Result` }, { $ref: '#/channels/api/messages/error' }] }
    }
  }
  messages.collectionUpdate = {
    name: 'collection_update',
    title: 'A change of a subscribed session\'s or user\'s attributes',
    payload: {
      type: 'object',
      properties: {
        jsonrpc: { const: '2.0' },
        method: { const: 'collection_update' },
        params: {
          type: 'object',
          required: ['msg', 'collection', 'id', 'subscription', 'fields'],
          properties: {
            msg: { type: 'string', enum: ['added', 'changed', 'removed', 'expired', 'ended'] },
            collection: { type: 'string', enum: [...SUBSCRIBE_EVENTS] },
            id: { type: 'string', description: 'The event id, increasing per session or user: give the last one seen as core.subscribe\'s `since` to resume.', examples: ['1765080000000-3'] },
            subscription: { type: 'string', description: 'The id core.subscribe answered.' },
            fields: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                version: { type: 'integer' },
                expiration_time: { type: ['string', 'null'], format: 'date-time' },
                is_encrypted: { type: 'boolean' },
                value: { description: 'added and changed, unless the attribute is encrypted or the subscription asked names_only; a replayed event only while the attribute still has that version (a later event of the replay supersedes it).' }
              }
            }
          }
        }
      }
    }
  }
  messages.subscriptionResync = {
    name: 'subscription_resync',
    title: 'The feed lost track: re-read, then resubscribe with since',
    payload: { type: 'object', properties: { jsonrpc: { const: '2.0' }, method: { const: 'subscription_resync' }, params: { type: 'object', properties: { subscription: { type: 'string' }, collection: { type: 'string' } } } } }
  }
  messages.notifyUnsubscribed = {
    name: 'notify_unsubscribed',
    title: 'The server ended a subscription (the session ended)',
    payload: { type: 'object', properties: { jsonrpc: { const: '2.0' }, method: { const: 'notify_unsubscribed' }, params: { type: 'object', properties: { subscription: { type: 'string' }, collection: { type: 'string' }, error: { type: 'string' } } } } }
  }
  messages.connectionClosing = {
    name: 'connection_closing',
    title: 'Sent just before the server closes the connection, with the close code and reason',
    payload: {
      type: 'object',
      properties: {
        jsonrpc: { const: '2.0' },
        method: { const: 'connection_closing' },
        params: {
          type: 'object',
          properties: {
            code: { type: 'integer', enum: [...new Set(Object.values(CLOSE).map((close) => close.code))] },
            reason: { type: 'string', enum: Object.values(CLOSE).map((close) => close.reason) }
          }
        }
      }
    }
  }
  for (const [name, message] of [['collectionUpdate', 'collectionUpdate'], ['subscriptionResync', 'subscriptionResync'], ['notifyUnsubscribed', 'notifyUnsubscribed'], ['connectionClosing', 'connectionClosing']] as const) {
    operations[name] = { action: 'send', channel: channelRef, messages: [{ $ref: `#/channels/api/messages/${message}` }] }
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'sso-attrs WebSocket API',
      version: '1.0.0',
      description: 'JSON-RPC 2.0 over WebSocket in TrueNAS\' conventions: the REST API\'s attribute operations (session.attr.*, user.attr.*), TrueNAS\' auth.me and auth.set_attribute, and change subscriptions (core.subscribe, collection_update). One request per message or a bounded batch (array). The REST API is described by openapi.yaml.'
    },
    servers: {
      local: { host: '127.0.0.1:17010', protocol: 'ws', pathname: '/api/current', description: 'Also /api/v1. `?app=<current_app>` sets the connection\'s application.' }
    },
    defaultContentType: 'application/json',
    channels: { api: { address: '/api/current', title: 'The JSON-RPC connection', messages } },
    operations,
    components: {
      securitySchemes: {
        ust: { type: 'httpApiKey', name: 'Authorization', in: 'header', description: '`Authorization: Bearer <ust>` on the upgrade, or call auth.login_with_token(ust) first.' }
      }
    }
  }
}

export function renderAsyncapi (): string {
  return stringify(asyncapiDocument(), { lineWidth: 0 })
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeOrCheck(ASYNCAPI_PATH, renderAsyncapi(), 'asyncapi.yaml is out of date with the method table: run npm run asyncapi')
}
