import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PROFILES, zatoSuite } from './zato-rest-client.ts'

// Port of Zato 3.2's test_session_attr_delete.py (zatosource/zato, branch support/3.2,
// code/zato-sso/test/zato/test_session_attr_delete.py), request for request, every assertion
// kept. The delete sends `value` and `expiration`, which Zato accepted and ignored.
zatoSuite('Zato 3.2 SessionAttrDeleteTestCase', (setUp) => {
  for (const profile of PROFILES) {
    test(`test_delete (${profile})`, async () => {
      const self = await setUp(profile)
      const name = self._get_random_data()
      const value = self._get_random_data()
      const expiration = 900

      const new_value = self._get_random_data()
      const new_expiration = 123

      await self.post('/zato/sso/session/attr', {
        current_ust: self.ctx.super_user_ust,
        target_ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name,
        value,
        expiration
      })

      await self.delete('/zato/sso/session/attr', {
        current_ust: self.ctx.super_user_ust,
        target_ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name,
        value: new_value,
        expiration: new_expiration
      })

      const response = await self.get('/zato/sso/session/attr', {
        current_ust: self.ctx.super_user_ust,
        target_ust: self.ctx.super_user_ust,
        name
      })

      assert.ok(!response.found)
    })
  }
})
