// Run commands Netmiko-style: sendCommand resolves to exactly a command's output (the prompt
// learnt from the console, --More-- pages answered), then read the record log with `new Log()`.
//   node examples/node/send-command.mjs                          # a sim with a pager
//   node examples/node/send-command.mjs sim://web01 'uname -a' 'seq 30'
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// The installed package (`npm install @mo/console`, or NODE_PATH naming it), else this checkout's.
const require = createRequire(import.meta.url)
const mo = (() => {
  try {
    return require('@mo/console')
  } catch {
    return require('../../bindings/node')
  }
})()
const [target = 'sim://web01?boot=fast&pager=10', ...rest] = process.argv.slice(2)
const commands = rest.length ? rest : ['uname -a', 'seq 25']

const logs = mkdtempSync(join(tmpdir(), 'mo-example-'))
try {
  const con = await mo.open(target, { logDir: logs })
  try {
    // Get to a shell prompt (the sim takes any user; its password here is `secret`).
    await con.sendLine('')
    if ((await con.expect([/login: $/, /[$#] $/], 60000)).index === 0) {
      await con.sendLine('root')
      await con.expect(['Password: '], 10000, { literal: true })
      await con.sendLine('secret')
      await con.expect([/[$#] $/], 10000)
    }
    console.log(`prompt: ${JSON.stringify(await con.findPrompt())}`)
    for (const command of commands) {
      const output = await con.sendCommand(command, { timeoutMs: 30000 })
      console.log(`--- ${command} (${output.split('\n').length} lines)`)
      console.log(output)
    }
  } finally {
    await con.close()
  }
  // The record log of the session, read without the CLI.
  const log = new mo.Log(logs)
  const records = await log.records()
  const typed = records.filter((r) => r.kind === 'input').map((r) => r.text.trim())
  console.log(`--- log: ${records.length} records, the commands typed: ${JSON.stringify(typed.filter((c) => commands.includes(c)))}`)
  console.log(`--- log: verify ok=${(await log.verify()).ok}`)
} catch (err) {
  console.error(`${err.name}: ${err.message}`)
  process.exitCode = 1
} finally {
  rmSync(logs, { recursive: true, force: true })
}
