// Follow a daemon's events (kernel panics, link down, …) as they happen.
//   MO_SERVER=http://127.0.0.1:8022 MO_TOKEN=... node examples/node/follow-events.mjs [DEVICE]
import { createRequire } from 'node:module'

const mo = createRequire(import.meta.url)('../../bindings/node') // or: require('@mo/console')
const client = new mo.Client(process.env.MO_SERVER || 'http://127.0.0.1:8022', process.env.MO_TOKEN)

for (const ev of (await client.listEvents({ device: process.argv[2], limit: 5 })).reverse()) {
  console.log(`(earlier) ${ev.time} ${ev.device} ${ev.severity} ${ev.name}: ${ev.text}`)
}
const events = client.events({ device: process.argv[2] })
process.on('SIGINT', () => events.close())
for await (const ev of events) {
  console.log(`${ev.time} ${ev.device} ${ev.severity} ${ev.name}: ${ev.text}`)
}
