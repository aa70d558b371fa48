// Many consoles at once from one event loop.
import test from 'node:test'
import assert from 'node:assert/strict'
import { mo, login } from './helpers.mjs'

test('20 consoles opened and driven concurrently each see only their own output', async () => {
  const names = Array.from({ length: 20 }, (_, i) => `conc${String(i).padStart(2, '0')}`)
  const consoles = await Promise.all(names.map((n) => mo.open(`sim://${n}?boot=fast`, { user: n })))
  try {
    const results = await Promise.all(
      consoles.map(async (con, i) => {
        await login(con, names[i])
        await con.sendLine(`echo token-${names[i]}-${i * 7}`)
        const m = await con.expect([/token-(conc\d+)-(\d+)\n/], 10000)
        return [con.device, m.captures[0], Number(m.captures[1])]
      }),
    )
    results.forEach(([device, echoed, n], i) => {
      assert.equal(device, names[i])
      assert.equal(echoed, names[i])
      assert.equal(n, i * 7)
    })
  } finally {
    await Promise.all(consoles.map((c) => c.close()))
  }
})

test('one console read by the iterator while another task writes to it', async (t) => {
  const con = await mo.open('sim://conc-rw?boot=none')
  t.after(() => con.close())
  await login(con, 'conc-rw')
  const writer = (async () => {
    for (let i = 0; i < 5; i++) await con.sendLine(`echo line-${i}`)
  })()
  let seen = ''
  for await (const chunk of con) {
    seen += chunk.toString()
    if (seen.includes('\r\nline-4\r\n')) break
  }
  await writer
  for (let i = 0; i < 5; i++) assert.match(seen, new RegExp(`\\r\\nline-${i}\\r\\n`))
})
