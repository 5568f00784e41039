import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AppError } from '../src/errors.ts'
import { EraseUserBodySchema, EraseUserQuerySchema, EraseUserResponses } from '../src/schemas/attributes.ts'
import { accessEntry } from '../src/audit.ts'
import { accessRequest, mergedFields } from './request-input.ts'

const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, {}]

// Account deletion: every attribute of one user goes at once. Not on the Zato path, where
// DELETE /zato/sso/user deletes the account itself, which this service does not hold.
const userRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.addHook('preValidation', async (request) => {
    if (request.body === undefined || request.body === null) request.body = {}
  })

  fastify.delete('/', {
    schema: {
      tags: ['user-attributes'],
      operationId: 'eraseUser',
      summary: 'Erase every attribute of a user',
      description: 'Deletes all of the target user\'s attributes (`/sso/user/attr`) in one atomic step, for account deletion (GDPR erasure); audited. Super-user only (403 E005001 otherwise), also for the caller\'s own. Session attributes are not touched: end the sessions for those. Idempotent.',
      security,
      querystring: EraseUserQuerySchema,
      body: EraseUserBodySchema,
      response: EraseUserResponses
    }
  }, async (request) => {
    const fields = mergedFields(request)
    const input = accessRequest(fields)
    const targetUser = fields.target_user as string | undefined
    // Every attempt by an authenticated caller is audited, refusals included: the entry starts
    // as soon as the token verifies, before anything is checked about the target.
    const caller = await (request.verifiedCaller ?? fastify.access.identify(input.currentUst))
    request.audit = { operation: 'erase-user', app: input.currentApp, caller: caller.subject, target_user: targetUser ?? caller.user, on_behalf: targetUser !== undefined && targetUser !== caller.user }
    if (!caller.isSuperUser) throw new AppError('E005001', 'Erasing a user\'s attributes needs the super-user role')
    const access = await fastify.access.authorizeUser({ ...input, targetUser }, caller)
    request.authorized = access
    const audit = accessEntry('erase-user', input.currentApp, access)
    request.audit = audit
    const erased = await fastify.attributes.eraseUser(access.owner)
    audit.attributes_erased = erased
    return { cid: request.id, status: 'ok' as const, erased }
  })
}

export default userRoutes
