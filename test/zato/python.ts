import assert from 'node:assert/strict'

// The few Python assertions the ported Zato tests use, with Python's meaning.

/** dateutil's `parse`, as `parse_datetime` in the tests: raises when the text is not a date. */
export function parse_datetime (text: unknown): Date {
  assert.equal(typeof text, 'string', `not a date string: ${JSON.stringify(text)}`)
  const date = new Date(text as string)
  assert.ok(!Number.isNaN(date.getTime()), `not a date: ${String(text)}`)
  return date
}

/** unittest's assertIn: membership in a list, or a substring of a string. */
export function assertIn (member: unknown, container: unknown): void {
  if (typeof container === 'string') assert.ok(typeof member === 'string' && container.includes(member), `${String(member)} not in ${container}`)
  else assert.ok(Array.isArray(container) && container.includes(member), `${String(member)} not in ${JSON.stringify(container)}`)
}
