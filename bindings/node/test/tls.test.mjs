// Client mode over HTTPS/WSS: `mod --demo --tls-self-signed`, trusted by `{ ca }` or `{ pin }`.
import test from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { mo, start, tempDir, waitFor, freePort, requireModBin } from './helpers.mjs'

/** Start `mod --demo --tls-self-signed`; resolves to { url, token, pin, cert }. */
async function tlsDaemon(t) {
  const dir = tempDir(t)
  const [ssh, http] = [await freePort(), await freePort()]
  const mod = start(t, requireModBin(), [
    '--demo', '--tls-self-signed', '--data-dir', dir, '--ssh', `127.0.0.1:${ssh}`, '--http', `127.0.0.1:${http}`,
  ])
  const found = await waitFor('the demo token and the fingerprint of mod', () => {
    if (mod.child.exitCode !== null) throw new Error(`mod exited: ${mod.output()}`)
    const token = /MO_TOKEN=(\S+)/.exec(mod.output())?.[1]
    const pin = /SHA-256 fingerprint ([0-9A-F:]{95})/.exec(mod.output())?.[1]
    return token && pin ? { token, pin } : undefined
  })
  const url = `https://127.0.0.1:${http}`
  assert.ok(mod.output().includes(`${url}/api/v1/`), mod.output())
  return { url, ...found, cert: join(dir, 'tls', 'self-signed.crt') }
}

test('client mode over HTTPS and WSS', async (t) => {
  const d = await tlsDaemon(t)

  await t.test('a pin or the CA: REST and an attach over WSS work', async () => {
    for (const tls of [{ pin: d.pin }, { ca: d.cert }, { pin: d.pin.replaceAll(':', '').toLowerCase() }]) {
      const client = new mo.Client(d.url, d.token, tls)
      const devices = await client.devices()
      assert.equal(devices.length, 5, JSON.stringify(tls))
      const con = await client.attach('sim-01', { mode: 'spy', replay: 0 })
      assert.equal(con.role, 'spy')
      await con.close()
    }
  })

  await t.test('a wrong pin, or no trust at all, is refused', async () => {
    const wrong = new mo.Client(d.url, d.token, { pin: 'ab'.repeat(32) })
    await assert.rejects(wrong.devices(), (e) => e instanceof mo.ConnectError && /does not match the pinned one/.test(e.message))
    await assert.rejects(wrong.attach('sim-01', { mode: 'spy' }), (e) => e instanceof mo.ConnectError)
    const untrusted = new mo.Client(d.url, d.token)
    await assert.rejects(untrusted.devices(), (e) => e instanceof mo.ConnectError && /certificate/i.test(e.message))
  })

  await t.test('bad trust options are refused at construction', () => {
    const bad = (e) => e instanceof mo.MoError && e.code === 'bad_request'
    assert.throws(() => new mo.Client(d.url, d.token, { pin: 'abc' }), bad)
    assert.throws(() => new mo.Client(d.url, d.token, { pin: d.pin, ca: d.cert }), bad)
    assert.throws(() => new mo.Client(d.url.replace('https', 'http'), d.token, { pin: d.pin }), bad)
  })
})
