// Power-cycle a device while its console stays open and capture the boot up to the login prompt.
//   MO_SERVER=http://127.0.0.1:8022 MO_TOKEN=... node examples/node/power-cycle-capture.mjs web01
// The device needs a power controller (`mo device set web01 --power URL`).
import { createRequire } from 'node:module'

const mo = createRequire(import.meta.url)('../../bindings/node') // or: require('@mo/console')
const device = process.argv[2] || 'web01'
const client = new mo.Client(process.env.MO_SERVER || 'http://127.0.0.1:8022', process.env.MO_TOKEN)

// Spy first, so nothing of the boot is missed; then switch the power.
const con = await client.attach(device, { mode: 'spy', replay: 0 })
try {
  console.log(await client.power(device, 'cycle'))
  const boot = await con.expect([/login: ?$/m], 300_000)
  console.log(`captured ${boot.before.length} characters of boot before ${JSON.stringify(boot.matched)}:`)
  console.log(boot.before)
} finally {
  await con.close()
}
