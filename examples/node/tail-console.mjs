// Tail a console: print its output as it arrives until Ctrl-C.
//   node examples/node/tail-console.mjs sim://web01             (embedded: opens the device itself)
//   MO_SERVER=http://127.0.0.1:8022 MO_TOKEN=... node examples/node/tail-console.mjs web01  (daemon)
import { createRequire } from 'node:module'

const mo = createRequire(import.meta.url)('../../bindings/node') // or: require('@mo/console')
const target = process.argv[2] || 'sim://web01'

const con = process.env.MO_SERVER
  ? await new mo.Client(process.env.MO_SERVER, process.env.MO_TOKEN).attach(target, { mode: 'spy', replay: 20 })
  : await mo.open(target, { mode: 'spy' })
process.on('SIGINT', () => con.close())
for await (const chunk of con) process.stdout.write(chunk)
