// Embedded consoles with scan patterns raise events, as the daemon's consoles do.
import test from 'node:test'
import assert from 'node:assert/strict'
import { mo, login } from './helpers.mjs'

const PANIC = { name: 'kernel-panic', regex: 'Kernel panic - not syncing', severity: 'critical' }

async function nextPatternEvent (con) {
  for (;;) {
    const event = await con.nextEvent(30000)
    assert.ok(event, 'no event within 30 s')
    if (event.name === 'pattern') return event
  }
}

test('an embedded console with a scan pattern raises an event', async (t) => {
  const con = await mo.open('sim://nscan01?boot=none', { scan: [PANIC] })
  t.after(() => con.close())
  const up = await con.nextEvent(30000)
  assert.deepEqual([up.name, up.text, up.device], ['connection', 'link up', 'nscan01'])
  await login(con, 'nscan01')
  await con.sendLine('panic')
  const event = await nextPatternEvent(con)
  assert.equal(event.device, 'nscan01')
  assert.equal(event.severity, 'critical')
  assert.match(event.text, /Kernel panic - not syncing/)
  assert.equal(event.count, 1)
  assert.ok(event.id >= 1)
  assert.match(event.time, /Z$/)
  assert.ok(event.context.some((line) => line.includes('Kernel panic')))
})

test('nextEvent gives null after its timeout and needs scan', async (t) => {
  const con = await mo.open('sim://nscan02?boot=none', { scan: [{ name: 'never', regex: 'never-printed' }] })
  t.after(() => con.close())
  assert.equal((await con.nextEvent(30000)).name, 'connection')
  assert.equal(await con.nextEvent(300), null)
  const plain = await mo.open('sim://nscan03?boot=none')
  t.after(() => plain.close())
  await assert.rejects(plain.nextEvent(100), /scan/)
})

test('bad scan patterns are refused before opening', async () => {
  await assert.rejects(mo.open('sim://nscan04', { scan: [{ name: 'bad-regex', regex: '(' }] }), /bad-regex/)
  await assert.rejects(mo.open('sim://nscan04', { scan: [{ name: 'p', regex: 'x', severity: 'loud' }] }), /loud/)
  await assert.rejects(mo.open('sim://nscan04', { scan: [] }), /at least one/)
})
