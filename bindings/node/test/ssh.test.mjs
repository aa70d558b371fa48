// Embedded ssh:// consoles with credentials, against a real OpenSSH sshd on loopback: the device of
// tests/support/src/sshd.rs (user consoletest, password mo-Test-pw-4711, both made by
// scripts/setup.sh; host and client keys made here; readiness read from /proc/net/tcp).
import test from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, copyFileSync, chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mo, tempDir, start, waitFor, freePort } from './helpers.mjs'

const SSHD = '/usr/sbin/sshd'
const USER = 'consoletest'
const PASSWORD = 'mo-Test-pw-4711'

function keygen(path) {
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'mo-test', '-f', path])
  } catch (e) {
    throw new Error(`ssh-keygen failed (apt-get install openssh-client): ${e.message}`)
  }
}

/** Whether something listens on TCP `port` (from /proc/net/tcp, no probe connection). */
function listening(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .some((line) => {
      const parts = line.trim().split(/\s+/)
      return parts.length > 3 && parts[3] === '0A' && parts[1].endsWith(`:${hex}`)
    })
}

/** Start an sshd for test `t`; gives its address, directory and a known_hosts file for it. */
async function startSshd(t) {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: apt-get install openssh-server`)
  try {
    execFileSync('getent', ['passwd', USER])
  } catch {
    throw new Error(`the local user ${USER} is missing: run scripts/setup.sh`)
  }
  mkdirSync('/run/sshd', { recursive: true })
  const dir = tempDir(t)
  chmodSync(dir, 0o755)
  keygen(join(dir, 'ssh_host_ed25519_key'))
  keygen(join(dir, 'client_key'))
  mkdirSync(join(dir, 'authorized_keys'))
  copyFileSync(join(dir, 'client_key.pub'), join(dir, 'authorized_keys', USER))
  chmodSync(join(dir, 'authorized_keys', USER), 0o644)
  const port = await freePort()
  writeFileSync(
    join(dir, 'sshd_config'),
    `Port ${port}\nListenAddress 127.0.0.1\nHostKey ${dir}/ssh_host_ed25519_key\n` +
      `PidFile ${dir}/sshd.pid\nAuthorizedKeysFile ${dir}/authorized_keys/%u\n` +
      'PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n' +
      `UsePAM no\nPermitRootLogin no\nStrictModes no\nAllowUsers ${USER}\n` +
      'MaxStartups 300:30:400\nUseDNS no\nPrintMotd no\nPrintLastLog no\nLogLevel DEBUG1\n',
  )
  const sshd = start(t, SSHD, ['-D', '-f', join(dir, 'sshd_config'), '-E', join(dir, 'sshd.log')])
  await waitFor(
    `sshd listening on 127.0.0.1:${port}`,
    () => {
      if (sshd.child.exitCode !== null) {
        throw new Error(`sshd exited: ${readFileSync(join(dir, 'sshd.log'), 'utf8')}`)
      }
      return listening(port)
    },
    30000,
  )
  const hostKey = readFileSync(join(dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim()
  const knownHosts = join(dir, 'known_hosts')
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`)
  return { address: `ssh://${USER}@127.0.0.1:${port}`, port, dir, knownHosts }
}

async function echo(con) {
  await con.sendLine('echo mo-ssh-$((40+2))')
  const m = await con.expect([/mo-ssh-(\d+)/], 30000)
  assert.deepEqual(m.captures, ['42'])
}

test('ssh:// with a password, a key file, key text and trust on first use', async (t) => {
  const sshd = await startSshd(t)

  const byPassword = await mo.open(sshd.address, { password: PASSWORD, knownHosts: sshd.knownHosts })
  await echo(byPassword)
  await byPassword.close()

  const keyPath = join(sshd.dir, 'client_key')
  const byKeyFile = await mo.open(sshd.address, { privateKey: keyPath, knownHosts: sshd.knownHosts })
  await echo(byKeyFile)
  await byKeyFile.close()

  const keyText = readFileSync(keyPath, 'utf8')
  const byKeyText = await mo.open(sshd.address, { privateKey: keyText, knownHosts: sshd.knownHosts })
  await echo(byKeyText)
  await byKeyText.close()

  const fresh = join(sshd.dir, 'known_hosts_tofu')
  writeFileSync(fresh, '')
  const tofu = await mo.open(sshd.address, { password: PASSWORD, knownHosts: fresh, trustHostKey: true })
  await echo(tofu)
  await tofu.close()
  assert.match(readFileSync(fresh, 'utf8'), new RegExp(`\\[127\\.0\\.0\\.1\\]:${sshd.port} ssh-ed25519 `))

  // A wrong password: a clear error that does not repeat it.
  const wrong = 'Wr0ng-pw-never-shown'
  await assert.rejects(mo.open(sshd.address, { password: wrong, knownHosts: sshd.knownHosts }), (e) => {
    assert.ok(e instanceof mo.MoError, `${e.name}: ${e.message}`)
    assert.doesNotMatch(`${e.message} ${e.stack} ${String(e)}`, new RegExp(wrong))
    assert.match(e.message, /auth/i)
    return true
  })

  // No known_hosts: the host key is unknown, refused.
  await assert.rejects(mo.open(sshd.address, { password: PASSWORD }), (e) => {
    assert.doesNotMatch(e.message, new RegExp(PASSWORD))
    assert.match(e.message, /key/i)
    return true
  })
})

test('privateKey naming a missing file rejects naming the path', async () => {
  await assert.rejects(mo.open('ssh://u@127.0.0.1:1', { privateKey: '/nonexistent/key' }), (e) => {
    assert.equal(e.code, 'bad_request')
    assert.match(e.message, /\/nonexistent\/key/)
    return true
  })
})
