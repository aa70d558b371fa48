// An embedded ipmi:// console with a password, against OpenIPMI's ipmi_sim on loopback, configured
// as tests/support/src/ipmi_sim.rs does (PEERS.md peers/ipmi_sim-*): user admin / password, Serial
// over LAN on the device end of a socat pty pair whose host end the test holds. ipmi_sim locks the
// SOL device by its last path component (/var/lock/LCK..NAME): the name is unique and the lock is
// removed afterwards. It drops bytes sent just after SOL activation, so the test sends numbered
// markers until one arrives before it relies on the link. A BMC started with a key also has a BMC
// key K_g on its LAN channel (`bmc_key "TEXT"` in lan.conf: ipmi_sim zero-pads text to 20 bytes,
// the same HMAC key as mo's text form).
import test from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, writeFileSync, chmodSync, openSync, readSync, writeSync, closeSync, rmSync, constants } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import dgram from 'node:dgram'
import { mo, tempDir, start, waitFor } from './helpers.mjs'

const IPMI_SIM = '/usr/bin/ipmi_sim'
const ASF_PING = Buffer.from([0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x01, 0x00, 0x00])

const lanConf = (port, dir, sol, bmcKey) => `name "ipmisim1"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
${bmcKey ? `    bmc_key "${bmcKey}"\n` : ''}  endlan
  chassis_control "${dir}/chassis.sh 0x20"
  sol "${sol}" 115200
  user 1 true  ""      "test"     user  10 none md2 md5 straight
  user 2 true  "admin" "password" admin 10 none md2 md5 straight
`

const EMU = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
`

/** A free UDP port on 127.0.0.1. */
function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4')
    s.on('error', reject)
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Whether the BMC on `port` answers an ASF presence ping within 200 ms. */
function pong(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4')
    const done = (ok) => {
      clearTimeout(timer)
      s.close()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), 200)
    s.on('error', () => done(false))
    s.on('message', (m) => done(m.length >= 9 && m[8] === 0x40))
    s.send(ASF_PING, port, '127.0.0.1')
  })
}

/** Start ipmi_sim with SOL for test `t` (its LAN channel requiring K_g `bmcKey` when given); gives
 * its address and fds of the host end (one blocking for writes, one non-blocking for reads). */
async function startBmc(t, bmcKey) {
  if (!existsSync(IPMI_SIM)) throw new Error(`${IPMI_SIM} is missing: apt-get install openipmi (scripts/setup.sh)`)
  const dir = tempDir(t)
  const solName = `ttySOL-node-${randomBytes(6).toString('hex')}`
  const sol = join(dir, solName)
  const host = join(dir, 'ttySOL-host')
  t.after(() => rmSync(`/var/lock/LCK..${solName}`, { force: true }))
  const socat = start(t, 'socat', ['-d', '-d', `pty,raw,echo=0,link=${sol}`, `pty,raw,echo=0,link=${host}`])
  await waitFor(`socat's ptys (${socat.output()})`, () => existsSync(sol) && existsSync(host), 30000)
  const hostFd = openSync(host, 'r+')
  t.after(() => closeSync(hostFd))
  const hostNbFd = openSync(host, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  t.after(() => closeSync(hostNbFd))
  const port = await freeUdpPort()
  mkdirSync(join(dir, 'state'))
  writeFileSync(join(dir, 'lan.conf'), lanConf(port, dir, sol, bmcKey))
  writeFileSync(join(dir, 'ipmi_sim.emu'), EMU)
  writeFileSync(join(dir, 'chassis.sh'), '#!/bin/sh\necho power:0\nexit 0\n')
  chmodSync(join(dir, 'chassis.sh'), 0o755)
  const args = ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'ipmi_sim.emu'), '-s', join(dir, 'state'), '-n']
  const sim = start(t, IPMI_SIM, args, { cwd: dir })
  await waitFor(
    `ipmi_sim answering an ASF ping on UDP ${port}`,
    async () => {
      if (sim.child.exitCode !== null) throw new Error(`ipmi_sim exited: ${sim.output()}`)
      return pong(port)
    },
    30000,
  )
  return { address: `ipmi://admin@127.0.0.1:${port}?cipher=3`, hostFd, hostNbFd }
}

/** Wait until SOL output flows: numbered markers until one arrives (each wait is a poll within the deadline). */
async function syncSol(con, bmc) {
  const until = Date.now() + 60000
  for (let n = 1; ; n++) {
    writeSync(bmc.hostFd, `sol-marker-${n}\r\n`)
    try {
      await con.expect([/sol-marker-\d+/], 1000)
      return
    } catch (e) {
      if (!(e instanceof mo.TimeoutError)) throw e
      if (Date.now() > until) throw new Error(`no SOL output from ipmi_sim's host end in 60 s`)
    }
  }
}

/** What the host end of the SOL line receives, until it contains `want` or `ms` pass. */
async function readHost(fd, want, ms) {
  let got = ''
  const until = Date.now() + ms
  const buf = Buffer.alloc(4096)
  while (!got.includes(want) && Date.now() < until) {
    try {
      const n = readSync(fd, buf, 0, buf.length, null)
      got += buf.subarray(0, n).toString('latin1')
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  return got
}

test('ipmi:// with a password reads SOL output; a wrong password is not repeated', async (t) => {
  const bmc = await startBmc(t)
  const con = await mo.open(bmc.address, { password: 'password' })
  t.after(() => con.close())
  await syncSol(con, bmc)
  writeSync(bmc.hostFd, 'host console says mo-ipmi-42\r\n')
  const m = await con.expect([/mo-ipmi-(\d+)/], 30000)
  assert.deepEqual(m.captures, ['42'])
  await con.close()

  const wrong = 'Wr0ng-bmc-pw-never-shown'
  await assert.rejects(mo.open(bmc.address, { password: wrong }), (e) => {
    assert.ok(e instanceof mo.MoError, `${e.name}: ${e.message}`)
    assert.doesNotMatch(`${e.message} ${e.stack}`, new RegExp(wrong))
    assert.match(e.message, /auth/i)
    return true
  })
})

test('ipmi:// with a BMC key K_g: SOL both ways; a wrong or missing key fails without showing it', async (t) => {
  const key = 'mo-Kg-Secret-7'
  const bmc = await startBmc(t, key)
  const con = await mo.open(bmc.address, { password: 'password', bmcKey: key })
  t.after(() => con.close())
  await syncSol(con, bmc)
  writeSync(bmc.hostFd, 'host with K_g says mo-kg-7\r\n')
  const m = await con.expect([/mo-kg-(\d+)/], 30000)
  assert.deepEqual(m.captures, ['7'])
  await con.sendLine('typed-through-kg-sol')
  const got = await readHost(bmc.hostNbFd, 'typed-through-kg-sol', 30000)
  assert.ok(got.includes('typed-through-kg-sol'), got)
  await con.close()

  for (const wrong of ['Wr0ng-Kg-never-shown', undefined]) {
    await assert.rejects(mo.open(bmc.address, { password: 'password', bmcKey: wrong }), (e) => {
      assert.ok(e instanceof mo.MoError, `${e.name}: ${e.message}`)
      const text = `${e.message} ${e.stack} ${JSON.stringify(e)}`
      assert.ok(!text.includes(key), text)
      if (wrong) assert.ok(!text.includes(wrong), text)
      assert.match(e.message, /K_g/i)
      return true
    })
  }
})
