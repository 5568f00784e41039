import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright-core'
import { build, mintUst } from '../helper.ts'

// Swagger UI at /docs in a real headless Chromium (Debian's package, driven by playwright-core):
// authorize with a UST, "Try it out" on PUT /sso/session/attr, Execute, and read the 200
// envelope in the response panel, as a person trying the API from the browser would.

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))
const SCREENSHOT = `${ARTIFACTS}swagger-ui-put.png`
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'
]

const missing = !existsSync(CHROMIUM)
const inCi = process.env.CI === 'true' || process.env.CI === '1'
// Outside CI a machine without Chromium skips this suite; in CI it must run (.ci/run installs it).
const skip = missing && !inCi ? `${CHROMIUM} is missing: apt-get install -y chromium to run the Swagger UI test` : false

describe('Swagger UI in headless Chromium', { skip }, () => {
  let browser: Browser
  let base: string
  let closeApp: () => Promise<void>

  before(async () => {
    assert.ok(!missing, `${CHROMIUM} is missing (CI=${process.env.CI}): .ci/run should have installed it`)
    const app = await build(undefined)
    await app.listen({ port: 0, host: '127.0.0.1' })
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    closeApp = async () => { await app.close() }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 })
  })

  after(async () => {
    await browser?.close()
    await closeApp?.()
  })

  test('authorize with a UST, try PUT /sso/session/attr, see the 200 envelope', { timeout: 90_000 }, async () => {
    const ust = await mintUst({ sub: 'alice' })
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
    page.setDefaultTimeout(20_000)
    const pageErrors: string[] = []
    page.on('pageerror', (error) => pageErrors.push(error.message))

    await page.goto(`${base}/docs`)
    await page.locator('.swagger-ui .info .title').filter({ hasText: 'sso-attrs' }).waitFor()

    // Authorize: the bearerAuth scheme takes the bare token.
    await page.locator('.auth-wrapper button.authorize').click()
    const modal = page.locator('.modal-ux')
    await modal.locator('input').first().fill(ust)
    await modal.locator('button.authorize').click()
    await modal.locator('button.btn-done').click()
    await modal.waitFor({ state: 'detached' })

    const operation = page.locator('#operations-attributes-setAttributes')
    await operation.locator('.opblock-summary').click()
    await operation.locator('button.try-out__btn').click()
    const body = { current_app: 'CRM', name: 'theme', value: { mode: 'dark', contrast: 'high' }, expiration: 3600 }
    await operation.locator('textarea.body-param__text').fill(JSON.stringify(body, null, 2))
    await operation.locator('button.execute').click()

    const live = operation.locator('.live-responses-table')
    const row = live.locator('tr.response').first()
    await row.waitFor()
    assert.equal((await row.locator('td.response-col_status').innerText()).trim(), '200')
    const shown = await row.locator('td.response-col_description pre').first().innerText()
    const envelope = JSON.parse(shown) as { cid: string, status: string, name: string, version: number, expiration_time: string }
    assert.equal(envelope.status, 'ok')
    assert.equal(envelope.name, 'theme')
    assert.equal(envelope.version, 1)
    assert.match(envelope.cid, /^[0-9a-f]{24}$/)
    assert.ok(Date.parse(envelope.expiration_time) > Date.now())

    // The request really carried the token: the attribute is in alice's session.
    const check = await fetch(`${base}/sso/session/attr?current_app=CRM&name=theme`, { headers: { authorization: `Bearer ${ust}` } })
    assert.deepEqual((await check.json() as { value: unknown }).value, body.value)

    mkdirSync(ARTIFACTS, { recursive: true })
    // From the operation's title down to the server's response: what a person sees after Execute.
    const pageTop = async (selector: string) => await page.locator(selector).first().evaluate((element) => {
      const box = element.getBoundingClientRect()
      // Runs in the page; the project's TypeScript has no DOM library, so window is untyped.
      const scrollY = (globalThis as unknown as { scrollY: number }).scrollY
      return { top: box.top + scrollY, bottom: box.bottom + scrollY }
    })
    const from = await pageTop('#operations-attributes-setAttributes')
    const to = await pageTop('#operations-attributes-setAttributes .live-responses-table')
    await page.screenshot({ path: SCREENSHOT, fullPage: true, clip: { x: 0, y: from.top, width: 1280, height: to.bottom - from.top + 16 } })
    assert.deepEqual(pageErrors, [], 'no script errors on the page')
    await page.close()
  })
})
