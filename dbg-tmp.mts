import { decodeJwt, decodeProtectedHeader } from 'jose'
import { OpenIdProvider } from './test/fixtures/oidc-provider.ts'
const op = await OpenIdProvider.start()
op.configure('http://127.0.0.1:9/sso/backchannel-logout')
const t = await op.login('alice')
for (const tok of [t.idToken, t.accessToken]) console.log(decodeProtectedHeader(tok), decodeJwt(tok))
const sid = decodeJwt(t.idToken).sid as string
console.log(decodeProtectedHeader(await op.logoutToken('alice', sid)), decodeJwt(await op.logoutToken('alice', sid)))
await op.rotate()
const t2 = await op.login('bob')
console.log(decodeProtectedHeader(t2.idToken))
await op.logout(t2)
console.log(op.backchannel)
await op.close()
