import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PROFILES, zatoSuite } from './zato-rest-client.ts'

// Port of Zato 3.2's test_user_attr_delete.py (zatosource/zato, branch support/3.2,
// code/zato-sso/test/zato/test_user_attr_delete.py), request for request, every assertion kept.
zatoSuite('Zato 3.2 UserAttrDeleteTestCase', (setUp) => {
  for (const profile of PROFILES) {
    test(`test_delete (${profile})`, async () => {
      const self = await setUp(profile)
      const name = self._get_random_data()
      const value = self._get_random_data()
      const expiration = 900

      await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name,
        value,
        expiration
      })

      await self.delete('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name
      })

      const response = await self.get('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name
      })

      assert.ok(!response.found)
    })
  }
})
