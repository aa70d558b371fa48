// pexpect/Netmiko-style calls: sendCommand (with the sim's --More-- pager), logfile, and reading
// a record log with `new Log(path)`.
import test from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { mo, login, tempDir, here } from './helpers.mjs'

test('sendCommand learns the prompt, answers the pager and times out', async (t) => {
  const con = await mo.open('sim://ncmd01?boot=none&pager=4')
  t.after(() => con.close())
  await login(con, 'ncmd01')
  assert.equal(await con.sendCommand('echo hello'), 'hello')
  const want = Array.from({ length: 25 }, (_, i) => String(i + 1)).join('\n')
  assert.equal(await con.sendCommand('seq 25'), want)
  assert.equal(await con.sendCommand('true'), '')
  assert.equal(await con.findPrompt(), 'ncmd01:~$')
  assert.equal(await con.sendCommand('uname', { prompt: /ncmd01:~\$ $/ }), 'Linux')
  assert.equal(await con.sendCommand('hostname', { prompt: 'ncmd01:~\\$ $', timeoutMs: 5000 }), 'ncmd01')
  await assert.rejects(con.sendCommand('cat', { timeoutMs: 300 }), (e) => e instanceof mo.TimeoutError)
  await con.write('\x04')
  await con.expect(['ncmd01:~$ '], 5000, { literal: true })
  assert.equal(await con.sendCommand('echo again'), 'again')
  await assert.rejects(con.sendCommand('x', { prompt: '(' }), (e) => e instanceof mo.MoError && e.code === 'bad_request')
})

test('logfile takes a path or a writable stream', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'transcript.log')
  const a = await mo.open('sim://nlog01?boot=none', { logfile: path })
  await login(a, 'nlog01')
  assert.equal(await a.sendCommand('echo transcribed'), 'transcribed')
  await a.close()
  const onDisk = readFileSync(path, 'latin1')
  assert.match(onDisk, /nlog01 login: /)
  assert.match(onDisk, /\r\ntranscribed\r\n/)
  assert.doesNotMatch(onDisk, /secret\r/)

  const stream = new PassThrough()
  const chunks = []
  stream.on('data', (c) => chunks.push(c))
  const b = await mo.open('sim://nlog02?boot=none', { logfile: stream, logfileSent: true })
  await login(b, 'nlog02')
  assert.equal(await b.sendCommand('echo streamed'), 'streamed')
  await b.close()
  // The callbacks run on the event loop: let the queued ones in.
  await new Promise((resolve) => setTimeout(resolve, 100))
  const streamed = Buffer.concat(chunks).toString('latin1')
  assert.match(streamed, /\r\nstreamed\r\n/)
  // What was sent is there too: the password, never echoed.
  assert.match(streamed, /secret\r/)
})

test('Log reads records by time and sequence, searches and verifies', async (t) => {
  const dir = tempDir(t)
  const logs = join(dir, 'nlog03')
  const con = await mo.open('sim://nlog03?boot=none', { logDir: logs, user: 'alice' })
  await login(con, 'nlog03')
  const middle = Date.now()
  assert.equal(await con.sendCommand('echo needle-42'), 'needle-42')
  await con.note('a note')
  await con.close()

  const log = new mo.Log(logs)
  assert.equal(log.path, logs)
  // The console stopped after close() resolved and writes its last records then: wait until
  // the log stops growing.
  for (let count = -1, i = 0; i < 30; i++) {
    const now = (await log.records()).length
    if (now === count) break
    count = now
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  const records = await log.records()
  assert.deepEqual(records.map((r) => r.seq), records.map((_, i) => i + 1))
  assert.ok(records.some((r) => r.kind === 'input' && r.user === 'alice' && r.text === 'echo needle-42\r'))
  assert.ok(records.some((r) => r.kind === 'note' && r.text === 'a note'))
  assert.ok(records.every((r) => Buffer.isBuffer(r.data) && r.time.endsWith('Z')))
  const later = await log.records({ since: middle })
  assert.ok(later.length > 0 && later.length < records.length)
  assert.ok(later.every((r) => r.timeMs >= middle))
  assert.deepEqual(await log.records({ until: middle - 3600e3 }), [])
  assert.equal((await log.records({ since: '1h' })).length, records.length)
  assert.equal((await log.records({ fromSeq: 3 }))[0].seq, 3)
  assert.deepEqual((await log.tail(2)).map((r) => r.seq), [records.length - 1, records.length])
  const hits = await log.search('needle-\\d+')
  assert.ok(hits.some((l) => l.endsWith('needle-42')), hits.join('\n'))
  assert.ok((await log.search('NEEDLE', { ignoreCase: true })).length > 0)
  assert.deepEqual(await log.search('no such text'), [])
  const report = await log.verify()
  assert.equal(report.ok, true)
  assert.equal(report.records, records.length)

  const segment = join(logs, readdirSync(logs).filter((f) => f.endsWith('.mlog')).sort()[0])
  const data = readFileSync(segment)
  data[data.indexOf('needle-42')] ^= 0x20
  writeFileSync(segment, data)
  const broken = await new mo.Log(logs).verify()
  assert.equal(broken.ok, false)
  assert.ok(broken.problem)
  assert.throws(() => new mo.Log(join(dir, 'nothing-here')), (e) => e instanceof mo.NotFound)
})

test('the send-command example runs on a sim', async () => {
  const { execFileSync } = await import('node:child_process')
  // MO_EXAMPLES_DIR: the checkout's examples when the suite runs from a copy (test-install.sh).
  const examples = process.env.MO_EXAMPLES_DIR ?? join(here, '..', '..', '..', 'examples')
  const example = join(examples, 'node', 'send-command.mjs')
  const out = execFileSync(process.execPath, [example, 'sim://nex01?boot=none&pager=5', 'seq 12', 'hostname'], {
    encoding: 'utf8',
    timeout: 60000,
  })
  const want = Array.from({ length: 12 }, (_, i) => String(i + 1)).join('\n')
  assert.ok(out.includes(`--- seq 12 (12 lines)\n${want}\n--- hostname (1 lines)\nnex01\n`), out)
  assert.ok(out.includes('prompt: "nex01:~$"'), out)
  assert.ok(out.includes('the commands typed: ["seq 12","hostname"]'), out)
  assert.ok(out.includes('--- log: verify ok=true'), out)
})
