// Issue 13 item 11: the process never crashes at exit. Short scripts that open an embedded console,
// talk to it and end — closing it, leaving it open with a read pending and calling process.exit,
// or inside a worker thread that is terminated mid-traffic — run many times in fresh processes;
// every run must exit 0 with the expected output (no abort, no segfault, no napi fatal error).
import test from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { pkgMain as pkg } from './helpers.mjs'

const RUNS = 50

const CLOSED = `
const mo = require(${JSON.stringify(pkg)});
(async () => {
  const c = await mo.open('exec:///bin/cat')
  await c.write(Buffer.from('hello\\n'))
  console.log((await c.expect(['hello'], 5000)).matched)
  await c.close()
})()
`

const EXIT_WHILE_OPEN = `
const mo = require(${JSON.stringify(pkg)});
(async () => {
  const c = await mo.open('exec:///bin/cat')
  await c.write(Buffer.from('hello\\n'))
  console.log((await c.expect(['hello'], 5000)).matched)
  c.read()
  process.exit(0)
})()
`

const WORKER_TERMINATED = `
const { Worker } = require('node:worker_threads')
const w = new Worker(\`
const mo = require(${JSON.stringify(pkg)});
(async () => {
  const c = await mo.open('exec:///bin/cat');
  await c.write(Buffer.from('hello\\\\n'));
  const m = await c.expect(['hello'], 5000);
  require('node:worker_threads').parentPort.postMessage(m.matched);
  c.read();
  setInterval(() => c.write(Buffer.from('x\\\\n')), 1);
})();
\`, { eval: true })
w.on('message', (msg) => { console.log(msg); setTimeout(() => w.terminate(), 20) })
`

function runOnce (script) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve(code === 0 && out.trim() === 'hello'
        ? null
        : `exit ${code} signal ${signal} stdout ${JSON.stringify(out)} stderr ${JSON.stringify(err.slice(-400))}`)
    })
  })
}

async function check (script) {
  const started = Date.now()
  const failures = []
  for (let i = 0; i < RUNS; i += 2) {
    const pair = await Promise.all([runOnce(script), runOnce(script)])
    pair.forEach((f, j) => { if (f) failures.push(`run ${i + j}: ${f}`) })
  }
  assert.deepEqual(failures, [], `${failures.length} of ${RUNS} runs crashed`)
  assert.ok(Date.now() - started < 60000, `${RUNS} runs took over 60 s`)
}

test('a script that closes its console exits cleanly every time', () => check(CLOSED))
test('process.exit with an open console and a pending read exits cleanly every time', () => check(EXIT_WHILE_OPEN))
test('terminating a worker that uses a console never crashes the process', () => check(WORKER_TERMINATED))
