import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { README_PATH, configTableOf, renderConfigTable } from '../scripts/config-table.ts'
import { ConfigSchema } from '../src/config.ts'
import { ERROR_CATALOG } from '../src/errors.ts'

const readme = readFileSync(README_PATH, 'utf8')

/** Rows of the markdown table that follows a heading, as arrays of trimmed cells. */
function tableAfter (heading: string): string[][] {
  const start = readme.indexOf(`\n${heading}\n`)
  assert.ok(start !== -1, `README has a "${heading}" section`)
  const lines = readme.slice(start + heading.length + 2).split('\n')
  const first = lines.findIndex((line) => line.startsWith('|'))
  const rows: string[][] = []
  for (const line of lines.slice(first)) {
    if (!line.startsWith('|')) break
    rows.push(line.slice(1, -1).split('|').map((cell) => cell.trim()))
  }
  return rows.slice(2)
}

describe('README.md', () => {
  test('configuration table is the one generated from ConfigSchema (run npm run docs:config when this fails)', () => {
    assert.equal(configTableOf(readme), renderConfigTable())
  })

  test('configuration table has a row per setting', () => {
    const names = renderConfigTable().split('\n').slice(2).map((row) => /^\| `([A-Z0-9_]+)` \|/.exec(row)?.[1])
    assert.deepEqual(names, Object.keys(ConfigSchema.properties))
  })

  test('error table lists every code of the catalog with its HTTP status', () => {
    const rows = tableAfter('## Errors')
    const listed = new Map(rows.map(([code, status]) => [code!, status!]))
    for (const [code, { status }] of Object.entries(ERROR_CATALOG)) {
      assert.ok(listed.has(code), `${code} is in the README error table`)
      assert.ok(listed.get(code)!.split('/').includes(String(status)), `${code}: README says ${listed.get(code)}, the catalog ${status}`)
    }
    for (const code of listed.keys()) assert.ok(code in ERROR_CATALOG, `${code} in the README is in ERROR_CATALOG`)
    assert.equal(rows.length, Object.keys(ERROR_CATALOG).length, 'one row per code')
  })
})
