// Rewrites the README's configuration table from ConfigSchema: npm run docs:config
// (or `-- --check` to fail when the README is out of date).
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ConfigSchema } from '../src/config.ts'

export const README_PATH = fileURLToPath(new URL('../README.md', import.meta.url))
export const TABLE_START = '<!-- config-table:start -->'
export const TABLE_END = '<!-- config-table:end -->'

interface PropertySchema {
  default?: unknown
  description?: string
  anyOf?: Array<{ const?: unknown }>
}

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ')

function describe (schema: PropertySchema): string {
  let text = schema.description ?? ''
  const literals = (schema.anyOf ?? []).map((branch) => branch.const).filter((value) => typeof value === 'string')
  // A closed list of values is worth spelling out unless the description already does.
  if (literals.length > 0 && !literals.every((value) => text.includes(`\`${value}\``))) {
    text += ` One of ${literals.map((value) => `\`${value}\``).join(', ')}.`
  }
  return text
}

export function renderConfigTable (): string {
  const rows = Object.entries(ConfigSchema.properties as Record<string, PropertySchema>).map(([name, schema]) => {
    const defaultValue = schema.default === undefined ? '(none)' : `\`${String(schema.default)}\``
    return `| \`${name}\` | ${cell(defaultValue)} | ${cell(describe(schema))} |`
  })
  return ['| variable | default | description |', '|---|---|---|', ...rows].join('\n')
}

/** The text between the markers, without the newlines that frame it. */
export function configTableOf (readme: string): string | undefined {
  const start = readme.indexOf(TABLE_START)
  const end = readme.indexOf(TABLE_END)
  if (start === -1 || end < start) return undefined
  return readme.slice(start + TABLE_START.length, end).trim()
}

export function withConfigTable (readme: string, table: string): string {
  const start = readme.indexOf(TABLE_START)
  const end = readme.indexOf(TABLE_END)
  if (start === -1 || end < start) throw new Error(`README.md has no ${TABLE_START} ... ${TABLE_END} section`)
  return `${readme.slice(0, start + TABLE_START.length)}\n${table}\n${readme.slice(end)}`
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const readme = readFileSync(README_PATH, 'utf8')
  const updated = withConfigTable(readme, renderConfigTable())
  if (process.argv.includes('--check')) {
    if (updated !== readme) {
      process.stderr.write('README.md configuration table is out of date: run npm run docs:config\n')
      process.exit(1)
    }
  } else if (updated !== readme) {
    writeFileSync(README_PATH, updated)
  }
}
