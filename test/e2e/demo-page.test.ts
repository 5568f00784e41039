import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright-core'
import { build, mintUst } from '../helper.ts'
import { RpcClient } from './ws-client.ts'

// The /demo page in a real headless Chromium (Debian's package, driven by playwright-core): it
// opens the WebSocket API with a token, subscribes to the user's attributes through the store's
// event feed, and shows changes made through REST and through another WebSocket as they happen.

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'
]

const missing = !existsSync(CHROMIUM)
const inCi = process.env.CI === 'true' || process.env.CI === '1'
// Outside CI a machine without Chromium skips this suite; in CI it must run (.ci/run installs it).
const skip = missing && !inCi ? `${CHROMIUM} is missing: apt-get install -y chromium to run the /demo page test` : false

describe('/demo in headless Chromium', { skip }, () => {
  let browser: Browser
  const closing: Array<() => Promise<void>> = []

  async function serve (): Promise<string> {
    const app = await build(undefined, {})
    await app.listen({ port: 0, host: '127.0.0.1' })
    closing.push(async () => { await app.close() })
    return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  }

  before(async () => {
    assert.ok(!missing, `${CHROMIUM} is missing (CI=${process.env.CI}): .ci/run should have installed it`)
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 })
  })

  after(async () => {
    await browser?.close()
    for (const close of closing) await close()
  })

  test('the page subscribes: a REST write and a WebSocket write by another client show at once', { timeout: 90_000 }, async () => {
    const pageErrors: string[] = []
    const ust = await mintUst({ sub: 'demo-user' })
    const base = await serve()
    const put = async (value: unknown) => await fetch(`${base}/sso/user/attr`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ust}`, 'content-type': 'application/json' },
      body: JSON.stringify({ current_app: 'CRM', name: 'theme', value })
    })
    assert.equal((await put('dark')).status, 200)

    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } })
    page.setDefaultTimeout(20_000)
    page.on('pageerror', (error) => pageErrors.push(error.message))
    await page.goto(`${base}/demo#${ust}`)
    const theme = page.locator('tr[data-name="theme"] td').nth(1)
    // 'live': subscribed to the store's feed (the page polls only when core.subscribe fails).
    await page.locator('#status').filter({ hasText: 'live' }).waitFor()
    assert.equal(await theme.innerText(), '"dark"')
    assert.equal((await page.locator('#user').innerText()).trim(), 'as demo-user')

    assert.equal((await put({ mode: 'light' })).status, 200)
    await page.locator('tr[data-name="theme"] td').nth(1).filter({ hasText: '"mode":"light"' }).waitFor()
    await page.locator('#events li').filter({ hasText: 'changed theme' }).waitFor()

    // Another client of the same user, over its own WebSocket.
    const other = await RpcClient.open(`${base.replace('http', 'ws')}/api/current?app=CRM`, { headers: { authorization: `Bearer ${await mintUst({ sub: 'demo-user' })}` } })
    try {
      assert.equal(await other.result('auth.set_attribute', ['lang', 'fr']), null)
    } finally {
      other.close()
    }
    await page.locator('tr[data-name="lang"] td').nth(1).filter({ hasText: '"fr"' }).waitFor()
    await page.locator('#events li').filter({ hasText: 'added lang' }).waitFor()
    assert.match(await page.locator('#events li').first().innerText(), /^\d+-\d+ /, 'each event shows its id')

    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: `${ARTIFACTS}demo-page.png`, fullPage: true })
    await page.close()
    assert.deepEqual(pageErrors, [], 'no script errors on the page')
  })
})
