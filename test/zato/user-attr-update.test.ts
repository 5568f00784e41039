import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PROFILES, status_code, zatoSuite } from './zato-rest-client.ts'

// Port of Zato 3.2's test_user_attr_update.py (zatosource/zato, branch support/3.2,
// code/zato-sso/test/zato/test_user_attr_update.py), request for request, every assertion
// kept; other users come from createAndLogInUser() (see user-attr-create.test.ts).
zatoSuite('Zato 3.2 UserAttrUpdateTestCase', (setUp) => {
  for (const profile of PROFILES) {
    test(`test_update (${profile})`, async () => {
      const self = await setUp(profile)
      const name = self._get_random_data()
      const value = self._get_random_data()
      const expiration = 900

      const new_value = self._get_random_data()
      const new_expiration = 123

      await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name,
        value,
        expiration
      })

      await self.patch('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name,
        value: new_value,
        expiration: new_expiration
      })
    })

    test(`test_update_for_another_user_by_super_user (${profile})`, async () => {
      const self = await setUp(profile)
      const { user_id } = await self.createAndLogInUser()

      const name = self._get_random_data()
      const value = self._get_random_data()
      const expiration = 900

      await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id,
        name,
        value,
        expiration
      })

      const new_value = self._get_random_data()
      const new_expiration = 123

      await self.patch('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id,
        name,
        value: new_value,
        expiration: new_expiration
      })
    })

    test(`test_update_for_another_user_by_regular_user (${profile})`, async () => {
      const self = await setUp(profile)
      const user1 = await self.createAndLogInUser()
      const user2 = await self.createAndLogInUser()
      const user_id2 = user2.user_id
      const ust = user1.ust

      const name = self._get_random_data()
      const value = self._get_random_data()
      const expiration = 900

      await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: user_id2,
        name,
        value,
        expiration
      })

      const new_value = self._get_random_data()
      const new_expiration = 123

      const response = await self.patch('/zato/sso/user/attr', {
        ust,
        user_id: user_id2,
        name,
        value: new_value,
        expiration: new_expiration
      }, false)

      assert.equal(response.status, status_code.error)
      assert.deepEqual(response.sub_status, [status_code.auth.not_allowed])
    })

    test(`test_update_many (${profile})`, async () => {
      const self = await setUp(profile)
      const name1 = self._get_random_data()
      const name2 = self._get_random_data()

      const value1 = self._get_random_data()
      const value2 = self._get_random_data()

      const new_value1 = self._get_random_data()
      const new_value2 = self._get_random_data()

      const data = [
        { name: name1, value: value1 },
        { name: name2, value: value2 }
      ]

      const new_data = [
        { name: name1, value: new_value1 },
        { name: name2, value: new_value2 }
      ]

      await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        data
      })

      await self.patch('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        data: new_data
      })
    })
  }
})
