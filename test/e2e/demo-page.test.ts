import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright-core'
import { userOwner } from '../../src/store/types.ts'
import { userIdOf } from '../../src/ust.ts'
import { RecordingEventFeed } from '../fixtures/event-feed.ts'
import { build, mintUst, TEST_ISSUER } from '../helper.ts'

// The /demo page in a real headless Chromium (Debian's package, driven by playwright-core): it
// opens the WebSocket API with a token and shows the user's attributes; a change made through
// REST appears on the page (read again every 2 s when the instance has no event feed), and a
// change event of the feed appears at once.

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

  async function serve (feed?: RecordingEventFeed): Promise<string> {
    const app = await build(undefined, {}, feed === undefined ? {} : { eventFeed: feed })
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

  test('a REST write shows on the page; a change event too', { timeout: 90_000 }, async () => {
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
    await page.locator('#status').filter({ hasText: /connected|live/ }).waitFor()
    assert.equal(await theme.innerText(), '"dark"')
    assert.equal((await page.locator('#user').innerText()).trim(), 'as demo-user')

    assert.equal((await put({ mode: 'light' })).status, 200)
    await page.locator('tr[data-name="theme"] td').nth(1).filter({ hasText: '"mode":"light"' }).waitFor()

    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: `${ARTIFACTS}demo-page.png`, fullPage: true })
    await page.close()

    // With an event feed the page subscribes and shows an event as it arrives.
    const feed = new RecordingEventFeed()
    const live = await serve(feed)
    const second = await browser.newPage({ viewport: { width: 1000, height: 700 } })
    second.setDefaultTimeout(20_000)
    second.on('pageerror', (error) => pageErrors.push(error.message))
    await second.goto(`${live}/demo#${ust}`)
    await second.locator('#status').filter({ hasText: 'live' }).waitFor()
    feed.publish(userOwner(userIdOf(TEST_ISSUER, 'demo-user')), { kind: 'added', name: 'lang', version: 1, expiresAt: null, payload: '"fr"' })
    await second.locator('tr[data-name="lang"] td').nth(1).filter({ hasText: '"fr"' }).waitFor()
    await second.locator('#events li').filter({ hasText: 'added lang' }).waitFor()
    await second.screenshot({ path: `${ARTIFACTS}demo-page-live.png`, fullPage: true })
    await second.close()
    assert.deepEqual(pageErrors, [], 'no script errors on the page')
  })
})
