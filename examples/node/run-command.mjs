// Run a command on a device and capture its output with expect.
//   node examples/node/run-command.mjs sim://web01 'uname -a'
//   MO_SERVER=http://127.0.0.1:8022 MO_TOKEN=... node examples/node/run-command.mjs sim-01 'uptime'
import { createRequire } from 'node:module'

const mo = createRequire(import.meta.url)('../../bindings/node') // or: require('@mo/console')
const [target = 'sim://web01?boot=fast', command = 'uname -a'] = process.argv.slice(2)

const con = process.env.MO_SERVER
  ? await new mo.Client(process.env.MO_SERVER, process.env.MO_TOKEN).attach(target)
  : await mo.open(target)
try {
  await con.sendLine('')
  const PROMPT = /[$#] $/
  const first = await con.expect([/login: $/, PROMPT], 60000)
  if (first.index === 0) {
    await con.sendLine(process.env.MO_USER || 'root')
    const pw = await con.expect([/assword: $/, PROMPT], 10000)
    if (pw.index === 0) {
      await con.sendLine(process.env.MO_PASSWORD || '')
      await con.expect([PROMPT], 10000)
    }
  }
  await con.sendLine(command)
  const done = await con.expect([PROMPT], 30000)
  // `before` is the echoed command line, its output and the prompt's start.
  const output = done.before.split('\n').slice(1, -1).join('\n').trimEnd()
  console.log(output)
} catch (err) {
  if (err instanceof mo.TimeoutError) console.error(`no prompt: ${err.message}`)
  else console.error(`${err.name}: ${err.message}`)
  process.exitCode = 1
} finally {
  await con.close()
}
