// Embedded mode against the built-in simulated machine (sim://NAME).
import test from 'node:test'
import assert from 'node:assert/strict'
import { mo, login } from './helpers.mjs'

test('open a sim console, log in, run a command and capture its output with expect', async (t) => {
  const con = await mo.open('sim://node01?boot=fast', { user: 'alice' })
  t.after(() => con.close())
  assert.equal(con.device, 'node01')
  assert.equal(con.user, 'alice')
  await login(con, 'node01')
  await con.sendLine('echo hello from node')
  const m = await con.expect([/nothing-like-this/, /^hello (\w+) node\r?$/m], 5000)
  assert.equal(m.index, 1)
  assert.equal(m.matched.trimEnd(), 'hello from node')
  assert.deepEqual(m.captures, ['from'])
  assert.match(m.before, /echo hello from node/)
  const who = await con.who()
  assert.equal(who.length, 1)
  assert.equal(who[0].user, 'alice')
  assert.ok(who[0].sinceMs > Date.parse('2020-01-01'))
})

test('expect takes strings as regexes (literally with { literal: true }) and honours RegExp flags', async (t) => {
  const con = await mo.open('sim://node02?boot=none')
  t.after(() => con.close())
  await login(con, 'node02')
  await con.sendLine('echo azb a.b HeLLo n-42')
  const lit = await con.expect('a.b', 5000, { literal: true })
  assert.equal(lit.matched, 'a.b')
  assert.match(lit.before, /azb $/)
  const ci = await con.expect([/hello/i], 5000)
  assert.equal(ci.matched, 'HeLLo')
  const re = await con.expect('n-(\\d+)', 5000)
  assert.deepEqual(re.captures, ['42'])
  await assert.rejects(con.expect('(', 1000), (e) => e instanceof mo.MoError && e.code === 'bad_request')
})

test('write and read Buffers; the async iterator yields Buffers', async (t) => {
  const con = await mo.open('sim://node03?boot=none')
  t.after(() => con.close())
  await login(con, 'node03')
  await con.write(Buffer.from('echo iter-marker-42\r'))
  let seen = ''
  for await (const chunk of con) {
    assert.ok(Buffer.isBuffer(chunk))
    seen += chunk.toString('latin1')
    if (seen.includes('iter-marker-42\r\nnode03:~$ ')) break
  }
  assert.match(seen, /\r\niter-marker-42\r\n/)
  // Leaving the loop keeps the console usable.
  await con.write('echo still-here\r')
  const m = await con.expect(['still-here\n'], 5000)
  assert.equal(m.index, 0)
})

test('sendBreak drops the sim into its boot monitor', async (t) => {
  const con = await mo.open('sim://node04?boot=none')
  t.after(() => con.close())
  await login(con, 'node04')
  const what = await con.sendBreak()
  assert.equal(typeof what, 'string')
  await con.expect([/ok $/m], 5000)
  await con.sendLine('go')
  await con.sendLine('echo back')
  await con.expect(['back\n'], 5000)
})

test('close ends reading: read() gives null and the iterator stops', async () => {
  const con = await mo.open('sim://node05?boot=none')
  await con.expect([/login: $/], 5000)
  await con.close()
  // The sim said nothing after its prompt (which expect consumed), so the iterator must end at
  // once and empty-handed: no chunk after close(), no hanging loop.
  const chunks = []
  const drained = (async () => {
    for await (const chunk of con) chunks.push(chunk.toString('latin1'))
    return 'ended'
  })()
  let timer
  const limit = new Promise((resolve) => {
    timer = setTimeout(resolve, 5000, 'still iterating')
  })
  try {
    assert.equal(await Promise.race([drained, limit]), 'ended', 'the iterator did not stop within 5 s of close()')
  } finally {
    clearTimeout(timer)
  }
  assert.deepEqual(chunks, [], 'the iterator gave output after close()')
  assert.equal(await con.read(), null)
  await assert.rejects(con.expect(['x'], 1000), (e) => e instanceof mo.MoError)
})
