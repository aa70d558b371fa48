// Client mode against a real running daemon: `mod --demo` (sim-01 … sim-05) with its HTTP API.
import test from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { mo, login, start, tempDir, waitFor, freePort, requireModBin, repo } from './helpers.mjs'

/** Start `mod --demo` on free loopback ports; resolves to { url, token }. */
async function daemon(t) {
  const dir = tempDir(t)
  const [ssh, http] = [await freePort(), await freePort()]
  const url = `http://127.0.0.1:${http}`
  const mod = start(t, requireModBin(), ['--demo', '--data-dir', dir, '--ssh', `127.0.0.1:${ssh}`, '--http', `127.0.0.1:${http}`])
  const token = await waitFor('the demo token line of mod', () => {
    if (mod.child.exitCode !== null) throw new Error(`mod exited: ${mod.output()}`)
    return /MO_TOKEN=(\S+)/.exec(mod.output())?.[1]
  })
  await waitFor('the HTTP API', async () => {
    try {
      return (await fetch(`${url}/api/v1/health`)).ok
    } catch {
      return false
    }
  })
  return { url, token }
}

test('client mode against mod --demo', async (t) => {
  const { url, token } = await daemon(t)
  const client = new mo.Client(url, token)

  await t.test('devices lists the demo sims', async () => {
    const devices = await client.devices()
    const names = devices.map((d) => d.name)
    for (const n of ['sim-01', 'sim-02', 'sim-03']) assert.ok(names.includes(n), `${n} in ${names}`)
    const one = await client.device('sim-01')
    assert.equal(one.name, 'sim-01')
    assert.match(one.url, /^sim:/)
  })

  await t.test('attach gives a Console: login, run a command, who, close', async () => {
    const con = await client.attach('sim-01', { mode: 'attach', replay: 0 })
    try {
      assert.equal(con.device, 'sim-01')
      await con.sendLine('')
      await login(con, 'sim-01').catch(async () => {
        // Already logged in by an earlier viewer: the prompt is the shell's.
        await con.sendLine('')
        await con.expect([/sim-01:~\$ /], 5000)
      })
      await con.sendLine('echo via-websocket')
      const m = await con.expect([/via-websocket\n/], 5000)
      assert.equal(m.index, 0)
      // sendCommand through the daemon: the prompt learnt over the WebSocket.
      assert.equal(await con.sendCommand('seq 3'), '1\n2\n3')
      const who = await con.who()
      assert.ok(who.length >= 1)
      const sessions = await client.who('sim-01')
      assert.ok(sessions.length >= 1)
      assert.ok(sessions.every((s) => typeof s.user === 'string' && typeof s.role === 'string'))
    } finally {
      await con.close()
    }
  })

  await t.test('log returns the recorded output', async () => {
    const text = await waitFor('via-websocket in the log', async () => {
      const log = await client.log('sim-01', { tail: 200 })
      return log.includes('via-websocket') && log
    })
    assert.match(text, /via-websocket/)
  })

  await t.test('gang sends one command and reports each answer; macros are listed', async () => {
    // sim-01 is logged in by the attach test above.
    const r = await client.gang(['sim-01'], 'echo gang-node')
    const one = r.outputs.find((o) => o.device === 'sim-01')
    assert.ok(one && one.text.includes('gang-node'), JSON.stringify(r))
    assert.deepEqual(r.divergent, [])
    assert.deepEqual(await client.macros(), [])
    await assert.rejects(client.playMacro('nope', ['sim-01']), mo.NotFound)
  })

  await t.test('power status answers per controller or says why not', async () => {
    try {
      const r = await client.power('sim-01', 'status')
      assert.equal(r.device, 'sim-01')
      assert.ok(Array.isArray(r.results))
    } catch (e) {
      // A device without a power controller: a typed mo error, never a generic one.
      assert.ok(e instanceof mo.MoError, `${e}`)
      assert.notEqual(e.code, 'error')
    }
    await assert.rejects(client.power('sim-01', 'explode'), (e) => e instanceof mo.MoError && e.code === 'bad_request')
  })

  await t.test('events() streams a kernel panic seen on a console', async () => {
    const stream = client.events()
    const first = stream[Symbol.asyncIterator]().next() // connects
    const con = await client.attach('sim-02', { replay: 0 })
    try {
      await con.sendLine('')
      await login(con, 'sim-02').catch(() => {})
      await con.sendLine('panic')
      let found = null
      const got = await first
      const isPanic = (ev) => ev.device === 'sim-02' && /Kernel panic/.test(ev.text)
      if (!got.done && isPanic(got.value)) found = got.value
      if (!found) {
        for await (const ev of stream) {
          assert.equal(typeof ev.id, 'number')
          if (isPanic(ev)) {
            found = ev
            break
          }
        }
      }
      assert.ok(found, 'a panic event')
      assert.equal(found.device, 'sim-02')
      assert.equal(found.severity, 'critical')
      const listed = await client.listEvents({ device: 'sim-02', limit: 50 })
      assert.ok(listed.some((e) => e.id === found.id))
    } finally {
      await stream.close()
      await con.close()
    }
    assert.equal(await stream.nextEvent(), null)
  })

  await t.test('unknown devices reject with NotFound', async () => {
    await assert.rejects(client.device('no-such-device'), (e) => e instanceof mo.NotFound && e.code === 'not_found')
    await assert.rejects(client.attach('no-such-device'), (e) => e instanceof mo.NotFound)
  })

  await t.test('a bad token rejects with AuthError', async () => {
    const bad = new mo.Client(url, 'mo_not-a-real-token')
    await assert.rejects(bad.devices(), (e) => e instanceof mo.AuthError)
    await assert.rejects(bad.attach('sim-01'), (e) => e instanceof mo.AuthError)
  })

  await t.test('a bad server address throws MoError from the constructor', () => {
    assert.throws(() => new mo.Client('ftp://x', token), (e) => e instanceof mo.MoError && e.code === 'bad_request')
  })

  await t.test('generated calls: add a device and a user with a grant, list, remove, search the log', async () => {
    assert.equal((await client.health()).status, 'ok')
    assert.equal((await client.ready()).ready, true)
    const added = await client.addDevice({ name: 'js-new', url: 'sim://js-new?boot=fast', description: 'from node' })
    assert.deepEqual([added.name, added.description], ['js-new', 'from node'])
    assert.ok((await client.devices()).some((d) => d.name === 'js-new'))
    const user = await client.addUser({ name: 'js-user', password: 'js-pw' })
    assert.equal(user.has_password, true)
    const grant = await client.addGrant({ subject: 'js-user', role: 'viewer', device_group: 'all' })
    assert.deepEqual(grant, { subject: 'js-user', role: 'viewer', device_group: 'all' })
    assert.ok((await client.grants()).some((g) => g.subject === 'js-user'))
    assert.equal(await client.removeGrant('js-user', 'viewer', 'all'), null)
    assert.ok(!(await client.grants()).some((g) => g.subject === 'js-user'))
    await client.removeUser('js-user')
    assert.ok(!(await client.users()).some((u) => u.name === 'js-user'))
    await client.removeDevice('js-new')
    await assert.rejects(client.removeDevice('js-new'), (e) => e instanceof mo.NotFound)
    const note = await client.addNote('sim-03', { text: 'note-from-node' })
    assert.ok(note.seq > 0)
    const hits = await client.logSearch('sim-03', 'note-from-node', { limit: 5 })
    assert.ok(hits.some((h) => h.line.includes('note-from-node')), JSON.stringify(hits))
    assert.ok((await client.me()).devices['sim-03'])
    // Power by glob and group: the demo sims have no power controller, so every report fails.
    const reports = await client.powerMany(['sim-02', 'sim-0*', '@all'])
    assert.deepEqual(reports.map((r) => r.device), ['sim-02', 'sim-01', 'sim-03', 'sim-04', 'sim-05'])
    assert.ok(reports.every((r) => r.ok === false && /no power controller/.test(r.message)), JSON.stringify(reports))
    await assert.rejects(client.powerMany(['nothing*'], 'cycle'), (e) => e instanceof mo.NotFound)
  })

  await t.test('a daemon that is not there rejects with ConnectError', async () => {
    const port = await freePort()
    const nobody = new mo.Client(`http://127.0.0.1:${port}`, token)
    await assert.rejects(nobody.devices(), (e) => e instanceof mo.ConnectError)
  })
})

test('every client operation of docs/sdk-operations.json is a method of Client', () => {
  // MO_REPO_DIR: the checkout when the suite runs from a copy (scripts/test-install.sh).
  const table = JSON.parse(readFileSync(join(process.env.MO_REPO_DIR ?? repo, 'docs', 'sdk-operations.json'), 'utf8'))
  const missing = [...table.operations, ...table.helpers]
    .filter((e) => typeof mo.Client.prototype[e.node] !== 'function')
    .map((e) => `${e.node} (${e.operation ?? 'helper'})`)
  assert.deepEqual(missing, [])
})
