import { test } from 'node:test'
import { PROFILES, zatoSuite } from './zato-rest-client.ts'

// Port of Zato 3.2's test_session_attr_create.py (zatosource/zato, branch support/3.2,
// code/zato-sso/test/zato/test_session_attr_create.py), request for request; RESTClient's own
// checks (HTTP 200, a cid, status ok) are the assertions, as there.
zatoSuite('Zato 3.2 SessionAttrCreateTestCase', (setUp) => {
  for (const profile of PROFILES) {
    test(`test_create (${profile})`, async () => {
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
    })
  }
})
