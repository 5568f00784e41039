import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { raw, type Reply } from '../e2e/http.ts'
import { CURRENT_APP, PROFILES, pythonJsonDumps, zatoSuite, type BaseTest } from './zato-rest-client.ts'

// Where sso-attrs deliberately answers otherwise than Zato 3.2 did, one named expectation each,
// in both client profiles. Each id is a row of the table in docs/ZATO-MIGRATION.md (checked
// below both ways), which gives the reason.

const ATTR = '/zato/sso/session/attr'

function error (reply: Reply, status: number, code: string): void {
  assert.equal(reply.status, status, reply.text)
  assert.equal(reply.body?.status, 'error', reply.text)
  assert.deepEqual(reply.body?.sub_status, [code], reply.text)
}

/** Fields every call of the super-user carries, as the Zato tests send them. */
function asSuperUser (self: BaseTest, fields: Record<string, unknown>): Record<string, unknown> {
  return { current_ust: self.ctx.super_user_ust, target_ust: self.ctx.super_user_ust, user_id: self.ctx.super_user_id, ...fields }
}

export const DIFFERENCES: Array<{ id: string, title: string, run: (self: BaseTest) => Promise<void> }> = [
  {
    id: 'Z01',
    title: 'a Zato UST (a Fernet token) is 401 E007001: USTs are JWTs from the identity provider',
    run: async (self) => {
      const fernet = 'gAAAAABlZxXm3Y6iY1Q0eGkFv2bXk9f8n1sR5c3h0ZlqWqkz1Y2hT4m5n6o7p8q9r0s1t2u3v4w5x6y7z8A9B0C1D2E3F4G5H6I7J8=='
      error(await self.client.send('POST', ATTR, { current_ust: fernet, target_ust: fernet, name: self._get_random_data(), value: 'v' }), 401, 'E007001')
    }
  },
  {
    id: 'Z02',
    title: 'errors answer the HTTP status of their code: an existing name is 409 E009001 (Zato: 403 for any validation error)',
    run: async (self) => {
      const name = self._get_random_data()
      await self.post(ATTR, asSuperUser(self, { name, value: 'v' }))
      error(await self.client.send('POST', ATTR, asSuperUser(self, { name, value: 'v' })), 409, 'E009001')
    }
  },
  {
    id: 'Z03',
    title: 'a missing current_app is 400 E008003 in an envelope (Zato: a bare "Bad request")',
    run: async (self) => {
      const reply = await raw(self.port, { method: 'POST', path: ATTR, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ current_ust: self.ctx.super_user_ust, name: 'a', value: 'v' }) })
      error(reply, 400, 'E008003')
    }
  },
  {
    id: 'Z04',
    title: 'an app not in SSO_APPS is 403 E004001 (Zato: HTTP 200 with status error)',
    run: async (self) => {
      error(await self.client.send('POST', ATTR, asSuperUser(self, { current_app: 'NoSuchApp', name: self._get_random_data(), value: 'v' })), 403, 'E004001')
    }
  },
  {
    id: 'Z05',
    title: 'a verb a path does not serve is 405 E008001 (Zato: 500)',
    run: async (self) => {
      error(await self.client.send('POST', `${ATTR}/exists`, asSuperUser(self, { name: 'a' })), 405, 'E008001')
    }
  },
  {
    id: 'Z06',
    title: 'update of a missing attribute is 404 E009002 (Zato: ok, nothing changed)',
    run: async (self) => {
      error(await self.client.send('PATCH', ATTR, asSuperUser(self, { name: self._get_random_data(), value: 'v' })), 404, 'E009002')
    }
  },
  {
    id: 'Z07',
    title: 'update writes a falsy value (Zato: skipped 0, "" and false)',
    run: async (self) => {
      const name = self._get_random_data()
      await self.post(ATTR, asSuperUser(self, { name, value: 'v' }))
      await self.patch(ATTR, asSuperUser(self, { name, value: '' }))
      assert.equal((await self.get(ATTR, asSuperUser(self, { name }))).value, '')
    }
  },
  {
    id: 'Z08',
    title: 'is_encrypted follows encrypt on update (Zato: the flag stayed as created)',
    run: async (self) => {
      const name = self._get_random_data()
      await self.post(ATTR, asSuperUser(self, { name, value: 'v' }))
      await self.patch(ATTR, asSuperUser(self, { name, value: 'secret', encrypt: true }))
      const got = await self.get(ATTR, asSuperUser(self, { name, decrypt: false }))
      assert.equal(got.is_encrypted, true)
      assert.match(String(got.value), /^gcm1\./)
    }
  },
  {
    id: 'Z09',
    title: 'batch get answers result keyed by name (Zato: 500 for two names, the single form for one)',
    run: async (self) => {
      const [a, b] = [self._get_random_data(), self._get_random_data()]
      await self.post(ATTR, asSuperUser(self, { data: [{ name: a, value: 'A' }, { name: b, value: 'B' }] }))
      const result = (await self.get(ATTR, asSuperUser(self, { data: [a, b] }))).result as Record<string, { found: boolean, value: unknown }>
      assert.deepEqual([result[a]?.value, result[b]?.value], ['A', 'B'])
      const one = await self.get(ATTR, asSuperUser(self, { data: [a] }))
      assert.equal((one.result as Record<string, { found: boolean }>)[a]?.found, true)
    }
  },
  {
    id: 'Z10',
    title: 'exists answers JSON booleans, and an object for a batch (Zato 3.2: the strings "True"/"False", "{...}")',
    run: async (self) => {
      const name = self._get_random_data()
      await self.post(ATTR, asSuperUser(self, { name, value: 'v' }))
      assert.equal((await self.get(`${ATTR}/exists`, asSuperUser(self, { name }))).result, true)
      assert.equal((await self.get(`${ATTR}/exists`, asSuperUser(self, { name: `${name}-not` }))).result, false)
      assert.deepEqual((await self.get(`${ATTR}/exists`, asSuperUser(self, { data: [name, 'zz'] }))).result, { [name]: true, zz: false })
    }
  },
  {
    id: 'Z11',
    title: 'names answers a JSON list sorted by code point (Zato 3.2: a Python repr string, in database order)',
    run: async (self) => {
      await self.post(ATTR, asSuperUser(self, { data: [{ name: 'b', value: 1 }, { name: 'a', value: 2 }, { name: 'B', value: 3 }] }))
      assert.deepEqual((await self.get(`${ATTR}/names`, asSuperUser(self, {}))).result, ['B', 'a', 'b'])
    }
  },
  {
    id: 'Z12',
    title: 'a single-form value keeps its JSON type (Zato: turned into a string)',
    run: async (self) => {
      const name = self._get_random_data()
      await self.post(ATTR, asSuperUser(self, { name, value: 42 }))
      assert.equal((await self.get(ATTR, asSuperUser(self, { name }))).value, 42)
    }
  },
  {
    id: 'Z13',
    title: 'times are ISO 8601 UTC with Z, and no expiry is null (Zato: naive times, 9999-12-31T00:00:00)',
    run: async (self) => {
      const name = self._get_random_data()
      await self.post(ATTR, asSuperUser(self, { name, value: 'v' }))
      const got = await self.get(ATTR, asSuperUser(self, { name }))
      assert.match(String(got.creation_time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      assert.equal(got.expiration_time, null)
    }
  },
  {
    id: 'Z14',
    title: 'expiration 0 or negative is 400 E008002 (Zato: 0 never expired, a negative one was born expired)',
    run: async (self) => {
      for (const expiration of [0, -5]) error(await self.client.send('POST', ATTR, asSuperUser(self, { name: self._get_random_data(), value: 'v', expiration })), 400, 'E008002')
    }
  },
  {
    id: 'Z15',
    title: 'a number sent as a string ("900") is 400 E008002 (Zato\'s SimpleIO made it 900)',
    run: async (self) => {
      error(await self.client.send('POST', ATTR, asSuperUser(self, { name: self._get_random_data(), value: 'v', expiration: '900' })), 400, 'E008002')
    }
  },
  {
    id: 'Z16',
    title: 'a field Zato never had is 400 E008002 naming it (Zato: silently ignored)',
    run: async (self) => {
      const reply = await self.client.send('POST', ATTR, asSuperUser(self, { name: self._get_random_data(), value: 'v', expiry: 60 }))
      error(reply, 400, 'E008002')
      assert.equal(reply.body?.details?.[0]?.path, '/expiry')
    }
  },
  {
    id: 'Z17',
    title: 'name and data together are 400 E008002 (Zato: name won)',
    run: async (self) => {
      error(await self.client.send('POST', ATTR, asSuperUser(self, { name: self._get_random_data(), value: 'v', data: [{ name: 'x', value: 1 }] })), 400, 'E008002')
    }
  },
  {
    id: 'Z18',
    title: 'the same name twice in one batch is 400 E008002, nothing written (Zato: E009001)',
    run: async (self) => {
      const name = self._get_random_data()
      error(await self.client.send('POST', ATTR, asSuperUser(self, { data: [{ name, value: 1 }, { name, value: 2 }] })), 400, 'E008002')
      assert.equal((await self.get(`${ATTR}/exists`, asSuperUser(self, { name }))).result, false)
    }
  },
  {
    id: 'Z19',
    title: 'a key given twice in one JSON object is 400 E008002 (Zato, like Python\'s json, kept the last)',
    run: async (self) => {
      const body = `{"current_app": "${CURRENT_APP}", "current_ust": "${self.ctx.super_user_ust}", "name": "dup", "value": "v", "encrypt": true, "encrypt": false}`
      error(await raw(self.port, { method: 'POST', path: ATTR, headers: { 'content-length': Buffer.byteLength(body) }, body }), 400, 'E008002')
    }
  },
  {
    id: 'Z20',
    title: 'a regular user may use its own session (Zato: a super-user\'s UST for every call, else E005001)',
    run: async (self) => {
      const user = await self.createAndLogInUser()
      await user.client.post(ATTR, { current_ust: user.ust, target_ust: user.ust, user_id: user.user_id, name: 'own', value: 'v' })
      assert.equal((await user.client.get(ATTR, { current_ust: user.ust, name: 'own' })).value, 'v')
      error(await user.client.send('GET', ATTR, { current_ust: user.ust, target_ust: self.ctx.super_user_ust, name: 'own' }), 403, 'E005001')
    }
  },
  {
    id: 'Z21',
    title: 'a Content-Type header that is not a media type at all is 415 E008001 (Zato: the body was read as JSON)',
    run: async (self) => {
      const body = pythonJsonDumps({ current_ust: self.ctx.super_user_ust, name: self._get_random_data(), value: 'v', current_app: CURRENT_APP })
      error(await raw(self.port, { method: 'POST', path: ATTR, headers: { 'content-type': ';;;', 'content-length': Buffer.byteLength(body) }, body }), 415, 'E008001')
    }
  },
  {
    id: 'Z22',
    title: 'an expired name is free at once (Zato: create was E009001 until the cleanup job ran, every 5 minutes)',
    run: async (self) => {
      const name = self._get_random_data()
      await self.post(ATTR, asSuperUser(self, { name, value: 'v', expiration: 1 }))
      await sleep(1100)
      await self.post(ATTR, asSuperUser(self, { name, value: 'v2' }))
    }
  },
  {
    id: 'Z23',
    title: 'encrypted values are AES-256-GCM under keys of their own: decrypt false gives a gcm1. string (Zato: a Fernet token under the UST key)',
    run: async (self) => {
      const name = self._get_random_data()
      await self.post(ATTR, asSuperUser(self, { name, value: 'secret', encrypt: true }))
      assert.match(String((await self.get(ATTR, asSuperUser(self, { name, decrypt: false }))).value), /^gcm1\.[^.]+\./)
    }
  },
  {
    id: 'Z24',
    title: 'X-Forwarded-For is not trusted and no per-user IP allow-list exists (Zato: checked the header as sent)',
    run: async (self) => {
      const body = JSON.stringify({ current_app: CURRENT_APP, current_ust: self.ctx.super_user_ust, name: self._get_random_data(), value: 'v' })
      const reply = await raw(self.port, { method: 'POST', path: ATTR, headers: { 'x-forwarded-for': '203.0.113.7, 10.0.0.1', 'x-zato-forwarded-for': '203.0.113.7', 'content-length': Buffer.byteLength(body) }, body })
      assert.equal(reply.status, 200, reply.text)
    }
  }
]

zatoSuite('Zato 3.2: documented differences', (setUp) => {
  for (const profile of PROFILES) {
    for (const difference of DIFFERENCES) {
      test(`difference ${difference.id} (${profile}): ${difference.title}`, async () => {
        await difference.run(await setUp(profile))
      })
    }
  }
})

test('docs/ZATO-MIGRATION.md has one row per difference, and no row without its test', () => {
  const guide = readFileSync(new URL('../../docs/ZATO-MIGRATION.md', import.meta.url), 'utf8')
  const rows = [...guide.matchAll(/^\| (Z\d\d) \|/gm)].map((match) => match[1])
  assert.deepEqual(rows, DIFFERENCES.map((difference) => difference.id))
})
