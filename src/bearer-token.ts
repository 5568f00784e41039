const SPACE = 32

/**
 * The token of `Authorization: Bearer <token>`: the scheme in any case, spaces around the
 * token allowed, none inside it; null for anything else. By hand rather than by a regular
 * expression: it runs twice a request (rate-limit key, then authorization) over a long token.
 */
export function bearerToken (header: string): string | null {
  if (header.length < 8 || header.charCodeAt(6) !== SPACE || header.slice(0, 6).toLowerCase() !== 'bearer') return null
  let start = 7
  while (header.charCodeAt(start) === SPACE) start++
  let end = header.length
  while (end > start && header.charCodeAt(end - 1) === SPACE) end--
  if (end === start) return null
  const token = header.slice(start, end)
  return token.includes(' ') ? null : token
}
