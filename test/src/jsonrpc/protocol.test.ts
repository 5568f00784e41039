import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { AppError, ERROR_CATALOG, type ErrorCode } from '../../../src/errors.ts'
import { fieldsOf, positional } from '../../../src/jsonrpc/methods.ts'
import { envelopeProblem, ERRNAME_OF, ERRNO, errorObject } from '../../../src/jsonrpc/protocol.ts'

describe('JSON-RPC errors', () => {
  test('every sub_status has an errno name; validation and limits are -32602, the rest -32001', () => {
    for (const code of Object.keys(ERROR_CATALOG) as ErrorCode[]) {
      const object = errorObject(new AppError(code))
      assert.ok(Object.hasOwn(ERRNO, ERRNAME_OF[code]), code)
      assert.equal(object.data?.errname, ERRNAME_OF[code])
      assert.equal(object.data?.error, ERRNO[ERRNAME_OF[code]])
      assert.deepEqual(object.data?.sub_status, [code])
      assert.equal(object.code, ['E008002', 'E008003', 'E011001'].includes(code) ? -32602 : -32001, code)
    }
  })

  test('anything else is EFAULT E008004 with a generic reason: no message, no stack', () => {
    const object = errorObject(new TypeError('secret detail at /srv/app.ts:12'))
    assert.deepEqual(object, { code: -32001, message: 'Method call error', data: { error: 14, errname: 'EFAULT', reason: '[EFAULT] Internal error', sub_status: ['E008004'] } })
  })
})

describe('JSON-RPC requests', () => {
  test('the envelope as TrueNAS checks it', () => {
    assert.equal(envelopeProblem({ jsonrpc: '2.0', method: 'core.ping', id: 1 }), null)
    assert.equal(envelopeProblem({ jsonrpc: '2.0', method: 'core.ping' }), null)
    assert.equal(envelopeProblem({ jsonrpc: '2.0', method: 'x', id: null, params: [] }), null)
    assert.match(envelopeProblem({ method: 'x' })!, /jsonrpc/)
    assert.match(envelopeProblem({ jsonrpc: '2.0', method: '' })!, /method/)
    assert.match(envelopeProblem({ jsonrpc: '2.0', method: 'x', id: {} })!, /id/)
    assert.match(envelopeProblem({ jsonrpc: '2.0', method: 'x', params: 'a' })!, /params/)
    assert.match(envelopeProblem({ jsonrpc: '2.0', method: 'x', extra: 1 })!, /Unknown member/)
    assert.match(envelopeProblem([1])!, /object/)
  })

  test('positional params map onto REST fields; an array in the name slot is the batch form', () => {
    const write = ['name', 'value', 'options'] as const
    assert.deepEqual(fieldsOf(write, ['a', 1, { expiration: 5 }]), { name: 'a', value: 1, expiration: 5 })
    assert.deepEqual(fieldsOf(write, [[{ name: 'a', value: 1 }], { encrypt: true }]), { data: [{ name: 'a', value: 1 }], encrypt: true })
    assert.deepEqual(fieldsOf(write, ['a', null]), { name: 'a', value: null })
    assert.deepEqual(fieldsOf(write, { name: 'a', value: 2 }), { name: 'a', value: 2 })
    assert.deepEqual(fieldsOf(['name', 'options'], [['a', 'b']]), { data: ['a', 'b'] })
    assert.throws(() => fieldsOf(['name', 'options'], ['a', {}, 'c']), (error: AppError) => error.details?.[0]?.path === '/params/2')
    assert.throws(() => fieldsOf(write, ['a', 1, 'not-an-object']), (error: AppError) => error.details?.[0]?.path === '/params/2')
    assert.throws(() => fieldsOf(write, ['a', 1, { name: 'b' }]), (error: AppError) => error.details?.[0]?.path === '/params/2/name')
    assert.deepEqual(positional(['key', 'value'], ['k', { v: 1 }]), { key: 'k', value: { v: 1 } })
    assert.throws(() => positional(['key', 'value'], [1, 2, 3]), /Too many arguments/)
  })
})
