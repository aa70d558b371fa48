// Pack the npm tarball of @mo/console with a prebuilt addon for this platform, from a library
// cargo already built (scripts/package.sh: target/release/libmo_node.so of its one release build).
// No compiler and no dev dependency runs here: the package's files ("files" in package.json, the
// README and package.json) are staged in a temporary directory with the library, stripped of its
// debug info, as mo.<platform>.node (the name native.js loads), and `npm pack` packs that.
// The tarball must hold every entry point (index.js, index.mjs, index.d.ts, native.js) and the
// addon, else this fails.
// Usage: node pack.mjs LIB OUT_DIR   (prints the tarball's path)
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { addonName } from './addon-name.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const [lib, outArg] = process.argv.slice(2)
if (!lib || !outArg) {
  console.error('usage: node pack.mjs LIB OUT_DIR')
  process.exit(2)
}
const out = resolve(outArg)
mkdirSync(out, { recursive: true })

const pkg = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'))
const stage = mkdtempSync(join(tmpdir(), 'mo-node-pack-'))
try {
  const plain = pkg.files.filter((f) => !f.includes('*'))
  for (const file of ['package.json', 'README.md', ...plain]) copyFileSync(join(here, file), join(stage, file))
  const addon = addonName()
  execFileSync('strip', ['--strip-unneeded', '-o', join(stage, addon), resolve(lib)], { stdio: 'inherit' })

  const [report] = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: stage, encoding: 'utf8' }),
  )
  const packed = new Set(report.files.map((f) => f.path))
  const missing = ['package.json', ...plain, addon].filter((f) => !packed.has(f))
  if (missing.length > 0) throw new Error(`pack.mjs: the tarball lacks ${missing.join(', ')}`)
  console.log(join(out, report.filename))
} finally {
  rmSync(stage, { recursive: true, force: true })
}
