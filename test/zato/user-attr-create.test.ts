import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PROFILES, status_code, zatoSuite } from './zato-rest-client.ts'

// Port of Zato 3.2's test_user_attr_create.py (zatosource/zato, branch support/3.2,
// code/zato-sso/test/zato/test_user_attr_create.py), request for request, every assertion
// kept. Creating, approving and logging in another user (POST /zato/sso/user, _approve,
// POST /zato/sso/user/login) is the identity provider's part now: createAndLogInUser() gives
// the user's id (its `sub`) and a UST of that user.
zatoSuite('Zato 3.2 UserAttrCreateTestCase', (setUp) => {
  for (const profile of PROFILES) {
    test(`test_create (${profile})`, async () => {
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
    })

    test(`test_create_already_exists (${profile})`, async () => {
      const self = await setUp(profile)
      const name = self._get_random_data()
      const value = self._get_random_data()

      const response1 = await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name,
        value
      })

      const response2 = await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        name,
        value
      }, false)

      assert.equal(response1.status, status_code.ok)
      assert.equal(response2.status, status_code.error)
      assert.deepEqual(response2.sub_status, [status_code.attr.already_exists])
    })

    test(`test_create_for_another_user_by_super_user (${profile})`, async () => {
      const self = await setUp(profile)
      const { user_id } = await self.createAndLogInUser()

      const name = self._get_random_data()
      const value = self._get_random_data()
      const expiration = 900

      const response = await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id,
        name,
        value,
        expiration
      })

      assert.equal(response.status, status_code.ok)
    })

    test(`test_create_for_another_user_by_regular_user (${profile})`, async () => {
      const self = await setUp(profile)
      const user1 = await self.createAndLogInUser()
      const user2 = await self.createAndLogInUser()
      const user_id2 = user2.user_id
      const ust = user1.ust

      const name = self._get_random_data()
      const value = self._get_random_data()
      const expiration = 900

      const response = await self.post('/zato/sso/user/attr', {
        ust,
        user_id: user_id2,
        name,
        value,
        expiration
      }, false)

      assert.equal(response.status, status_code.error)
      assert.deepEqual(response.sub_status, [status_code.auth.not_allowed])
    })

    test(`test_create_many (${profile})`, async () => {
      const self = await setUp(profile)
      const data = [
        { name: self._get_random_data(), value: self._get_random_data() },
        { name: self._get_random_data(), value: self._get_random_data() }
      ]

      const response = await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        data
      })

      assert.equal(response.status, status_code.ok)
    })

    test(`test_create_many_already_exists (${profile})`, async () => {
      const self = await setUp(profile)
      const data = [
        { name: self._get_random_data(), value: self._get_random_data() },
        { name: self._get_random_data(), value: self._get_random_data() }
      ]

      const response1 = await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        data
      })

      const response2 = await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id: self.ctx.super_user_id,
        data
      }, false)

      assert.equal(response1.status, status_code.ok)
      assert.equal(response2.status, status_code.error)
      assert.deepEqual(response2.sub_status, [status_code.attr.already_exists])
    })

    test(`test_create_many_for_another_user_by_super_user (${profile})`, async () => {
      const self = await setUp(profile)
      const { user_id } = await self.createAndLogInUser()

      const data = [
        { name: self._get_random_data(), value: self._get_random_data() },
        { name: self._get_random_data(), value: self._get_random_data() }
      ]

      const response = await self.post('/zato/sso/user/attr', {
        ust: self.ctx.super_user_ust,
        user_id,
        data
      })

      assert.equal(response.status, status_code.ok)
    })

    test(`test_create_many_for_another_user_by_regular_user (${profile})`, async () => {
      const self = await setUp(profile)
      const user1 = await self.createAndLogInUser()
      const user2 = await self.createAndLogInUser()
      const user_id2 = user2.user_id
      const ust = user1.ust

      const data = [
        { name: self._get_random_data(), value: self._get_random_data() },
        { name: self._get_random_data(), value: self._get_random_data() }
      ]

      const response = await self.post('/zato/sso/user/attr', {
        ust,
        user_id: user_id2,
        data
      }, false)

      assert.equal(response.status, status_code.error)
      assert.deepEqual(response.sub_status, [status_code.auth.not_allowed])
    })
  }
})
