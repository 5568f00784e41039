import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

// The layers import downwards only: routes/ may use plugins/ and src/, plugins/ may use src/,
// and below routes/ only src/app.ts, which registers the routes, knows they exist.

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const SPECIFIER = /\b(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g

function sourceFiles (folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(folder, name))
}

/** The files under `folder` that import something under `forbidden`, with what they import. */
function importsInto (folder: string, forbidden: string): string[] {
  const found: string[] = []
  for (const file of sourceFiles(folder)) {
    for (const match of readFileSync(join(ROOT, file), 'utf8').matchAll(SPECIFIER)) {
      const specifier = match[1]!
      if (!specifier.startsWith('.')) continue
      const target = relative(ROOT, resolve(ROOT, dirname(file), specifier))
      if (target === forbidden || target.startsWith(`${forbidden}/`)) found.push(`${file} imports ${specifier}`)
    }
  }
  return found
}

test('the scan sees the imports it is looking for', () => {
  assert.ok(importsInto('routes', 'src').length > 0, 'routes/ imports from src/')
  assert.ok(importsInto('src', 'routes').some((line) => line.startsWith(join('src', 'app.ts'))), 'src/app.ts imports the routes')
})

test('no file under plugins/ or src/ imports from routes/, but src/app.ts that registers them', () => {
  const offending = [...importsInto('src', 'routes'), ...importsInto('plugins', 'routes')]
    .filter((line) => !line.startsWith(`${join('src', 'app.ts')} imports`))
  assert.deepEqual(offending, [])
})

test('no file under src/ imports from plugins/, but src/app.ts that registers them', () => {
  const offending = importsInto('src', 'plugins').filter((line) => !line.startsWith(`${join('src', 'app.ts')} imports`))
  assert.deepEqual(offending, [])
})
