// Issue 19 item 2: the package has an ES module entry and a CommonJS one, and named imports work
// in both: `import { open } from '@mo/console'` and `const { open } = require('@mo/console')` give
// the same objects (one native module, one set of error classes), and a program of each kind
// opens a console with them. Run from this checkout, the name resolves to the package itself
// (its "exports"); run by scripts/test-install.sh, to the copy installed from the npm tarball.
import test from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import * as esm from '@mo/console'
import moDefault, { open, Client, Console, MoError, NotFound, TimeoutError } from '@mo/console'
import { here } from './helpers.mjs'

const require = createRequire(import.meta.url)
const cjs = require('@mo/console')
/** Where a program that names the package is run: it resolves the name as the tests do. */
const root = join(here, '..')

test('the ES module names every CommonJS export, as the same object', () => {
  const names = Object.keys(cjs)
  for (const name of ['open', 'Client', 'Console', 'EventStream', 'MoError', 'NotFound', 'TimeoutError']) {
    assert.ok(names.includes(name), `require('@mo/console') has no ${name}`)
  }
  for (const name of names) {
    assert.ok(name in esm, `import { ${name} } from '@mo/console' is missing (add it to index.mjs)`)
    assert.equal(esm[name], cjs[name], `${name} differs between import and require`)
  }
  assert.equal(moDefault, cjs)
  assert.equal(open, cjs.open)
  assert.equal(Client, cjs.Client)
  assert.equal(Console, cjs.Console)
  assert.ok(Object.getPrototypeOf(NotFound) === MoError && Object.getPrototypeOf(TimeoutError) === MoError)
})

test('an error from the ES module entry is an instance of the CommonJS class', async () => {
  const con = await open('exec:///bin/cat')
  try {
    await assert.rejects(con.expect(['never'], 200), (e) => e instanceof cjs.TimeoutError && e.code === 'timeout')
  } finally {
    await con.close()
  }
})

/** Run a Node program given as text (`--input-type` says which kind) from `root`; its stdout. */
function run(source, inputType) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`--input-type=${inputType}`, '-e', source], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))))
  })
}

/** The body both programs run once `open` and `TimeoutError` are bound by name. */
const BODY = `
  const con = await open('exec:///bin/cat')
  await con.write(Buffer.from('named-import\\n'))
  const m = await con.expect(['named-(\\\\w+)'], 5000)
  let timedOut = false
  try { await con.expect(['never'], 100) } catch (e) { timedOut = e instanceof TimeoutError }
  await con.close()
  console.log(JSON.stringify({ word: m.captures[0], timedOut }))
`

test('an ES module program uses named imports', async () => {
  const out = await run(`import { open, TimeoutError } from '@mo/console'\n${BODY}`, 'module')
  assert.deepEqual(JSON.parse(out), { word: 'import', timedOut: true })
})

test('a CommonJS program destructures require', async () => {
  const out = await run(`const { open, TimeoutError } = require('@mo/console');\n(async () => {${BODY}})()`, 'commonjs')
  assert.deepEqual(JSON.parse(out), { word: 'import', timedOut: true })
})
