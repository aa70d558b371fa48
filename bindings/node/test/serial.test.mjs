// Embedded mode over a real serial line: a socat pty pair, mo on one end, the test on the other.
import test from 'node:test'
import assert from 'node:assert/strict'
import { openSync, closeSync } from 'node:fs'
import tty from 'node:tty'
import { mo, tempDir, ptyPair } from './helpers.mjs'

test('serial:// console over a socat pty pair carries bytes both ways', async (t) => {
  const dir = tempDir(t)
  const { dev, peer } = await ptyPair(t, dir)
  const con = await mo.open(`serial://${dev}?baud=115200`, { user: 'bob' })
  t.after(() => con.close())
  assert.equal(con.device, 'ttyDEV')

  const fd = openSync(peer, 'r+')
  const input = new tty.ReadStream(fd)
  const output = new tty.WriteStream(fd)
  t.after(() => {
    input.destroy()
    output.destroy()
    try {
      closeSync(fd)
    } catch {}
  })
  let fromMo = ''
  input.on('data', (d) => (fromMo += d.toString('latin1')))

  // Device -> mo.
  output.write('U-Boot 2024.01\r\n=> ')
  const m = await con.expect([/=> $/], 5000)
  assert.match(m.before, /U-Boot 2024\.01/)

  // mo -> device.
  await con.sendLine('printenv bootcmd')
  await con.write(Buffer.from([0x00, 0xff, 0x41]))
  const until = Date.now() + 5000
  while (!fromMo.includes('printenv bootcmd\r\x00\xffA') && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20))
  }
  assert.equal(fromMo, 'printenv bootcmd\r\x00\xffA')

  // Raw reads see binary output unchanged.
  output.write(Buffer.from([1, 2, 3, 0xfe]))
  let got = Buffer.alloc(0)
  while (got.length < 4) got = Buffer.concat([got, await con.read()])
  assert.deepEqual([...got], [1, 2, 3, 0xfe])
})
