// Typed errors: every failure rejects with a MoError subclass carrying a stable code.
import test from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { mo, login, tempDir } from './helpers.mjs'

test('the error classes form a hierarchy under MoError and Error', () => {
  for (const Class of [mo.ConnectError, mo.AuthError, mo.TimeoutError, mo.NotFound, mo.PermissionDenied, mo.ProtocolError]) {
    const e = new Class('boom', 'x')
    assert.ok(e instanceof mo.MoError)
    assert.ok(e instanceof Error)
    assert.equal(e.name, Class.name)
    assert.equal(e.message, 'boom')
    assert.equal(e.code, 'x')
  }
})

test('expect rejects with TimeoutError naming the pattern and the last output', async (t) => {
  const con = await mo.open('sim://errs01?boot=none')
  t.after(() => con.close())
  await login(con, 'errs01')
  await con.sendLine('echo waiting-here')
  await assert.rejects(con.expect([/never-printed/], 300), (e) => {
    assert.ok(e instanceof mo.TimeoutError, `${e}`)
    assert.equal(e.code, 'timeout')
    assert.match(e.message, /never-printed/)
    assert.match(e.message, /waiting-here/)
    assert.doesNotMatch(e.message, /^\[mo:/)
    return true
  })
  // The console still works after a timeout.
  await con.sendLine('echo after')
  await con.expect(['after\n'], 5000)
})

test('bad addresses reject with MoError code bad_request', async () => {
  await assert.rejects(mo.open('nosuch://x'), (e) => {
    assert.ok(e instanceof mo.MoError)
    assert.equal(e.code, 'bad_request')
    assert.match(e.message, /nosuch:\/\/x/)
    return true
  })
  await assert.rejects(mo.open('sim://a/b'), (e) => e instanceof mo.MoError && e.code === 'bad_request')
})

test('a serial port that does not exist rejects with ConnectError', async (t) => {
  const dir = tempDir(t)
  const missing = join(dir, 'ttyNOPE')
  await assert.rejects(mo.open(`serial://${missing}`, { waitUpMs: 5000 }), (e) => {
    assert.ok(e instanceof mo.ConnectError, `${e.name}: ${e.message}`)
    assert.match(e.message, /ttyNOPE/)
    return true
  })
})

test('typing while spying rejects with PermissionDenied', async (t) => {
  const con = await mo.open('sim://errs02?boot=none', { mode: 'spy' })
  t.after(() => con.close())
  await assert.rejects(con.sendLine('echo no'), (e) => e instanceof mo.PermissionDenied && e.code === 'permission_denied')
})

test('bad arguments reject with MoError code bad_request', async (t) => {
  const con = await mo.open('sim://errs03?boot=none')
  t.after(() => con.close())
  await assert.rejects(con.expect([/a(?=b)/], 100), (e) => e instanceof mo.MoError && e.code === 'bad_request' && /a\(\?=b\)/.test(e.message))
  await assert.rejects(con.expect([], 100), (e) => e instanceof mo.MoError && e.code === 'bad_request')
  await assert.rejects(con.expect(['x'], -1), (e) => e instanceof mo.MoError && e.code === 'bad_request')
  await assert.rejects(con.sendBreak(10), (e) => e instanceof mo.MoError && e.code === 'bad_request')
  await assert.rejects(con.setMode('sideways'), (e) => e instanceof mo.MoError && /sideways/.test(e.message))
  await assert.rejects(mo.open('sim://x', { mode: 'sideways' }), (e) => e.code === 'bad_request')
})
