import { AppError, type ErrorCode, type ErrorDetail } from '../errors.ts'

// JSON-RPC 2.0 messages in TrueNAS' conventions (docs/DECISIONS.md D61): its codes, and in
// `data` an errno name as TrueNAS clients read it, plus our sub_status list and JSON Pointer
// details. Never a stack trace.

export type RequestId = string | number | null

export interface RpcRequest {
  jsonrpc: '2.0'
  method: string
  params?: unknown
  /** Absent: a notification, answered with nothing. */
  id?: RequestId
}

export const RPC_CODES = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  CALL_ERROR: -32001
} as const

/** TrueNAS' errno vocabulary (`truenas_api_client/exc.py`): name -> number. */
export const ERRNO = {
  ENOENT: 2,
  EFAULT: 14,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  EOPNOTSUPP: 95,
  ENOTAUTHENTICATED: 207
} as const

export type Errname = keyof typeof ERRNO

export interface RpcErrorData {
  error: number
  errname: Errname
  reason: string
  sub_status: ErrorCode[]
  details?: ErrorDetail[]
}

export interface RpcErrorObject {
  code: number
  message: string
  data?: RpcErrorData
}

/** Each sub_status's errno name; validation codes also go out as -32602. */
export const ERRNAME_OF: Record<ErrorCode, Errname> = {
  E008003: 'EINVAL',
  E008002: 'EINVAL',
  E007001: 'ENOTAUTHENTICATED',
  E004001: 'EACCES',
  E005001: 'EACCES',
  E009002: 'ENOENT',
  E009001: 'EEXIST',
  E011005: 'EINVAL',
  E011001: 'EINVAL',
  E011002: 'EBUSY',
  E011004: 'EINVAL',
  E011006: 'EINVAL',
  E011008: 'EINVAL',
  E011003: 'EBUSY',
  E011007: 'EBUSY',
  E008001: 'EINVAL',
  E008004: 'EFAULT'
}

const INVALID_PARAMS_CODES: ReadonlySet<ErrorCode> = new Set(['E008002', 'E008003', 'E011001'])

/** A call's refusal as a JSON-RPC error object; anything not an AppError is an internal error without detail. */
export function errorObject (error: unknown, errname?: Errname): RpcErrorObject {
  if (error instanceof RpcCallError) return error.object
  const appError = error instanceof AppError ? error : new AppError('E008004')
  const name = errname ?? ERRNAME_OF[appError.code]
  const invalidParams = INVALID_PARAMS_CODES.has(appError.code)
  const message = invalidParams ? 'Invalid params' : 'Method call error'
  return {
    code: invalidParams ? RPC_CODES.INVALID_PARAMS : RPC_CODES.CALL_ERROR,
    message,
    data: {
      error: ERRNO[name],
      errname: name,
      reason: `[${name}] ${appError.message}`,
      sub_status: appError.subStatus,
      ...(appError.details !== undefined ? { details: appError.details } : {})
    }
  }
}

/** An error with a JSON-RPC code of its own (not one of our sub_status codes). */
export class RpcCallError extends Error {
  readonly object: RpcErrorObject
  constructor (code: number, message: string, errname: Errname, reason: string, subStatus: ErrorCode[] = ['E008002'], details?: ErrorDetail[]) {
    super(reason)
    this.object = { code, message, data: { error: ERRNO[errname], errname, reason: `[${errname}] ${reason}`, sub_status: subStatus, ...(details !== undefined ? { details } : {}) } }
  }
}

export const notAuthenticated = (): RpcCallError =>
  new RpcCallError(RPC_CODES.CALL_ERROR, 'Method call error', 'ENOTAUTHENTICATED', 'Not authenticated: call auth.login_with_token(ust) first, or send Authorization: Bearer <ust> on the upgrade', ['E007001'])

export const busy = (reason: string): RpcCallError => new RpcCallError(RPC_CODES.CALL_ERROR, 'Method call error', 'EBUSY', reason, ['E011002'])

export const invalidRequest = (reason: string): RpcErrorObject =>
  ({ code: RPC_CODES.INVALID_REQUEST, message: 'Invalid Request', data: { error: ERRNO.EINVAL, errname: 'EINVAL', reason: `[EINVAL] ${reason}`, sub_status: ['E008002'] } })

export const parseError = (): RpcErrorObject =>
  ({ code: RPC_CODES.PARSE_ERROR, message: 'Parse error', data: { error: ERRNO.EINVAL, errname: 'EINVAL', reason: '[EINVAL] The message is not valid JSON', sub_status: ['E008002'] } })

export const methodNotFound = (method: string): RpcCallError =>
  new RpcCallError(RPC_CODES.METHOD_NOT_FOUND, 'Method not found', 'EINVAL', `Method does not exist: ${method.slice(0, 100)}`, ['E008001'])

export const invalidParams = (path: string, reason: string): AppError => new AppError('E008002', reason, [{ path, message: reason }])

/** Whether a request id is one JSON-RPC allows (string, number, null). */
export function isRequestId (id: unknown): id is RequestId {
  return id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))
}

/**
 * A request's envelope checked as TrueNAS does: `jsonrpc` exactly "2.0", `method` a non-empty
 * string, `id` a string, number or null (absent: a notification), `params` an array or object.
 * Returns the error object, or null when the envelope is sound.
 */
export function envelopeProblem (message: unknown): string | null {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return 'A request must be a JSON object'
  const request = message as Record<string, unknown>
  if (request.jsonrpc !== '2.0') return '"jsonrpc" must be exactly "2.0"'
  if (typeof request.method !== 'string' || request.method === '') return '"method" must be a non-empty string'
  if (Object.hasOwn(request, 'id') && !isRequestId(request.id)) return '"id" must be a string, a number or null'
  if (request.params !== undefined && (typeof request.params !== 'object' || request.params === null)) return '"params" must be an array or an object'
  for (const key of Object.keys(request)) {
    if (!['jsonrpc', 'method', 'params', 'id'].includes(key)) return `Unknown member "${key.slice(0, 50)}"`
  }
  return null
}
