import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { checkConfigCommand } from '../src/cli/check-config.ts'
import { keygenCommand } from '../src/cli/keygen.ts'
import { rekeyCommand } from '../src/cli/rekey.ts'
import { serveCommand } from '../src/cli/serve.ts'
import { tokenCommand } from '../src/cli/token.ts'
import { wsCommand } from '../src/cli/ws.ts'
import { ERROR_CATALOG } from '../src/errors.ts'

// The documents beside the code: links that resolve, and the lists in them that must follow
// the code (commands, error codes, the released version).

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')
const DOCUMENTS = ['README.md', 'CHANGELOG.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]

describe('documentation', () => {
  test('every relative link in the markdown documents points to a file that exists', () => {
    for (const document of DOCUMENTS) {
      for (const [, target] of read(document).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!) || target!.startsWith('#')) continue
        const path = join(ROOT, dirname(document), target!.split('#')[0]!)
        assert.ok(existsSync(path), `${document} links to ${target}, which does not exist`)
      }
    }
  })

  test('README links the Zato migration guide and the changelog', () => {
    const readme = read('README.md')
    assert.match(readme, /\]\(docs\/ZATO-MIGRATION\.md\)/)
    assert.match(readme, /\]\(CHANGELOG\.md\)/)
  })

  test('CHANGELOG has an entry for the package version and states the API compatibility rule', () => {
    const { version } = JSON.parse(read('package.json')) as { version: string }
    const changelog = read('CHANGELOG.md')
    assert.match(changelog, new RegExp(`^## ${version.replaceAll('.', '\\.')} - \\d{4}-\\d\\d-\\d\\d$`, 'm'))
    assert.match(changelog, /Within v1, changes are additive only/)
  })

  test('the Zato migration guide names every sub_status of the error catalog with its HTTP status', () => {
    const guide = read('docs/ZATO-MIGRATION.md')
    for (const [code, { status }] of Object.entries(ERROR_CATALOG)) {
      const row = guide.split('\n').find((line) => line.startsWith(`| ${code} |`))
      assert.ok(row !== undefined, `${code} has a row in the guide's status table`)
      assert.ok(row.split('|')[2]!.trim().split('/').includes(String(status)), `${code}: ${row}`)
    }
  })

  test('the README command table lists every sso-attrs command', () => {
    const commands = [serveCommand, tokenCommand, keygenCommand, checkConfigCommand, rekeyCommand, wsCommand].map((command) => command.name)
    const listed = [...read('README.md').matchAll(/^\| `sso-attrs ([a-z-]+)/gm)].map((match) => match[1])
    assert.deepEqual(listed, commands)
  })
})
