import type { ErrorCode, ErrorDetail } from './errors.ts'

export interface ValidationIssue {
  keyword: string
  instancePath: string
  message?: string
  params: Record<string, unknown>
}

/** Ajv's errors as our code (missing or invalid) and one detail per field, JSON Pointer paths. */
export function validationDetails (issues: ValidationIssue[]): { code: ErrorCode, details: ErrorDetail[] } {
  const code: ErrorCode = issues.some((issue) => issue.keyword === 'required') ? 'E008003' : 'E008002'
  // One detail per field: a union reports each branch, which reads better joined with "or".
  const byPath = new Map<string, string[]>()
  for (const issue of issues) {
    let path = issue.instancePath
    let message = issue.message ?? 'is invalid'
    if (issue.keyword === 'required') {
      path = `${path}/${String(issue.params.missingProperty)}`
      message = 'is required'
    } else if (issue.keyword === 'additionalProperties') {
      path = `${path}/${String(issue.params.additionalProperty)}`
      message = 'is not a known field'
    } else if (issue.keyword === 'anyOf' && byPath.has(path)) {
      continue
    }
    const messages = byPath.get(path) ?? []
    if (!messages.includes(message)) messages.push(message)
    byPath.set(path, messages)
  }
  return { code, details: [...byPath].map(([path, messages]) => ({ path, message: messages.join(' or ') })) }
}
