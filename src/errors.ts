// One catalog of every error the service answers with. Each code is a Zato-compatible
// sub_status; the HTTP status travels with it so the error handler is a lookup.

export interface ErrorDetail {
  /** JSON Pointer to the offending input field, e.g. `/data/2/expiration`. */
  path: string
  message: string
}

export const ERROR_CATALOG = {
  E008003: { status: 400, message: 'A required field is missing' },
  E008002: { status: 400, message: 'Invalid input' },
  E007001: { status: 401, message: 'Invalid or expired session token' },
  E004001: { status: 403, message: 'Application not allowed' },
  E005001: { status: 403, message: 'You are not allowed to access this resource' },
  E009002: { status: 404, message: 'No such attribute' },
  E009001: { status: 409, message: 'Attribute already exists' },
  E011005: { status: 409, message: 'Version mismatch' },
  E011001: { status: 413, message: 'Limit exceeded' },
  E011002: { status: 429, message: 'Too many requests' },
  E011004: { status: 422, message: 'Value was encrypted with a key that is no longer configured' },
  E011006: { status: 422, message: 'Value does not decrypt: tampered, or not from this session and name' },
  E011008: { status: 422, message: 'This Idempotency-Key was used with another request' },
  E011003: { status: 503, message: 'Store unavailable' },
  E011007: { status: 507, message: 'Store full: Redis has reached its memory limit; nothing was written' },
  E008001: { status: 404, message: 'Unknown route' },
  E008004: { status: 500, message: 'Internal error' }
} as const

export type ErrorCode = keyof typeof ERROR_CATALOG

export class AppError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly details?: ErrorDetail[]
  /** The envelope's sub_status: `code` first, then any codes that tell the cause more precisely. */
  subStatus: ErrorCode[]

  constructor (code: ErrorCode, message?: string, details?: ErrorDetail[], statusCode?: number) {
    super(message ?? ERROR_CATALOG[code].message)
    this.name = 'AppError'
    this.code = code
    this.statusCode = statusCode ?? ERROR_CATALOG[code].status
    if (details !== undefined) this.details = details
    this.subStatus = [code]
  }
}

/**
 * A stored value names an encryption key id that is not configured (removed before rekey
 * moved every value off it). sub_status is E011006, as in 1.0 for every value that cannot be
 * decrypted, followed by E011004 for this cause: the operator can put the key back.
 */
export class KeyNotConfiguredError extends AppError {
  constructor (message?: string, details?: ErrorDetail[]) {
    super('E011006', message ?? ERROR_CATALOG.E011004.message, details)
    this.name = 'KeyNotConfiguredError'
    this.subStatus = ['E011006', 'E011004']
  }
}

export function isAppError (error: unknown): error is AppError {
  return error instanceof AppError
}

export function invalidInput (path: string, message: string): AppError {
  return new AppError('E008002', message, [{ path, message }])
}

export function missingInput (path: string, message: string): AppError {
  return new AppError('E008003', message, [{ path, message }])
}

export function limitExceeded (path: string, message: string): AppError {
  return new AppError('E011001', message, [{ path, message }])
}

/** Raised by stores when the backing service cannot answer in time; maps to 503. */
export class StoreUnavailableError extends AppError {
  constructor (cause?: unknown) {
    super('E011003')
    this.name = 'StoreUnavailableError'
    if (cause !== undefined) this.cause = cause
  }
}

/** Raised by stores when Redis is over its memory limit and refused a write whole; maps to 507. */
export class StoreFullError extends AppError {
  constructor (cause?: unknown) {
    super('E011007')
    this.name = 'StoreFullError'
    if (cause !== undefined) this.cause = cause
  }
}
