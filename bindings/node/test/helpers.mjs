// Shared helpers of the Node suite: the package, a login on a sim console, socat pty pairs and a
// running daemon. Every process a test starts is stopped by its own PID.
import { createRequire } from 'node:module'
import { spawn } from 'node:child_process'
import { mkdtempSync, existsSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import net from 'node:net'

const require = createRequire(import.meta.url)
export const here = dirname(fileURLToPath(import.meta.url))
export const repo = join(here, '..', '..', '..')
/**
 * The package's main file as `require('@mo/console')` resolves it: this checkout's index.js (the
 * package refers to itself by name through its "exports"), or the installed copy's when the suite
 * runs from a directory where the package was installed (scripts/test-install.sh).
 */
export const pkgMain = require.resolve('@mo/console')
/** The package, as `require('@mo/console')` gives it. */
export const mo = require('@mo/console')

/**
 * The daemon the client-mode tests drive: `MO_MOD_BIN` (scripts/test-node.sh sets it), else
 * `debug/mod` in cargo's target directory (`CARGO_TARGET_DIR` when set, relative to the working
 * directory as cargo reads it, else the workspace's `target/`).
 */
export const modBin =
  process.env.MO_MOD_BIN ||
  join(process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(repo, 'target'), 'debug', 'mod')

/** Fail (never skip) when the daemon binary is missing, saying how to build it. */
export function requireModBin() {
  if (!existsSync(modBin)) {
    throw new Error(
      `${modBin} is missing, so the client-mode tests cannot run: build it with ` +
        '`cargo build -p mo-daemon` (scripts/test-node.sh does), or point MO_MOD_BIN at a built `mod`',
    )
  }
  return modBin
}

/** A fresh temporary directory, removed by `cleanup`. */
export function tempDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'mo-node-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Log in on a sim console at its `login:` prompt; resolves at the shell prompt. */
export async function login(con, name) {
  await con.expect([/login: $/], 20000)
  await con.sendLine('root')
  await con.expect(['Password: '], 5000)
  await con.sendLine('secret')
  await con.expect([`${name}:~$ `], 5000, { literal: true })
}

/** Start a process; the test stops it (by its PID) when it ends. */
export function start(t, cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([gone, sleep(5000)])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
  })
  return { child, output: () => output }
}

/** Wait until `check()` is truthy (polling), or fail naming `what`. */
export async function waitFor(what, check, ms = 20000) {
  const until = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`)
    await sleep(50)
  }
}

/** A socat pty pair in `dir`: `dev` is the device side mo opens, `peer` the side the test drives. */
export async function ptyPair(t, dir) {
  const dev = join(dir, 'ttyDEV')
  const peer = join(dir, 'ttyPEER')
  const socat = start(t, 'socat', ['-d', '-d', `pty,raw,echo=0,link=${dev}`, `pty,raw,echo=0,link=${peer}`])
  await waitFor(`socat's ptys (${socat.output()})`, () => existsSync(dev) && existsSync(peer))
  return { dev, peer }
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}
