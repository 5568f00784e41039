import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PROFILES, zatoSuite } from './zato-rest-client.ts'

// Port of Zato 3.2's test_session_attr_exists.py (zatosource/zato, branch support/3.2,
// code/zato-sso/test/zato/test_session_attr_exists.py), request for request, every assertion kept.
zatoSuite('Zato 3.2 SessionAttrExistsTestCase', (setUp) => {
  for (const profile of PROFILES) {
    test(`test_exists (${profile})`, async () => {
      const self = await setUp(profile)
      const name = self._get_random_data()
      const value = self._get_random_data()
      const expiration = 900

      await self.post('/zato/sso/session/attr', {
        current_ust: self.ctx.super_user_ust,
        target_ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name,
        value,
        expiration
      })

      const response = await self.get('/zato/sso/session/attr/exists', {
        current_ust: self.ctx.super_user_ust,
        target_ust: self.ctx.super_user_ust,
        name
      })

      assert.ok(response.result)
    })
  }
})
