// Build the addon in the workspace's shared target directory (dev profile unless --release) and
// generate index.d.ts with the napi CLI's type-def generator.
//
// `napi build` always passes `--target`, which makes cargo build every dependency a second time
// in target/<triple>/; this script runs the same steps on the plain `cargo build` output:
//   1. cargo build -p mo-node with NAPI_TYPE_DEF_TMP_FOLDER set (napi-derive writes the types),
//   2. copy target/<profile>/libmo_node.so to mo.<platform>.node (the name native.js loads),
//   3. assemble index.d.ts from dts-header.d.ts and the types (@napi-rs/cli's generateTypeDef).
// Usage: node build.mjs [--release] [--jobs N] [--dts PATH] [--workspace]
//   --workspace  build with the whole workspace's feature set (`cargo build --workspace
//                --all-targets`, as scripts/test.sh does) instead of `-p mo-node`, so that no
//                dependency is compiled a second time with other features; only mo-node itself
//                is rebuilt (its build script reruns when NAPI_TYPE_DEF_TMP_FOLDER changes).
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateTypeDef } from '@napi-rs/cli'
import { addonName, cargoLibName } from './addon-name.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}
const release = args.includes('--release')
const workspace = args.includes('--workspace')
const jobs = opt('--jobs', process.env.MO_TEST_JOBS || '2')
const dtsPath = join(here, opt('--dts', 'index.d.ts'))

const metadata = JSON.parse(
  execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: here, maxBuffer: 64 << 20 }),
)
const targetDir = process.env.CARGO_TARGET_DIR || metadata.target_directory
const typeDefDir = mkdtempSync(join(targetDir, 'napi-type-def-'))
try {
  const select = workspace ? ['--workspace', '--all-targets'] : ['-p', 'mo-node']
  const cargoArgs = ['build', `-j${jobs}`, ...select, ...(release ? ['--release'] : [])]
  console.log(`build.mjs: cargo ${cargoArgs.join(' ')}`)
  execFileSync('cargo', cargoArgs, {
    cwd: here,
    stdio: 'inherit',
    env: { ...process.env, NAPI_TYPE_DEF_TMP_FOLDER: typeDefDir },
  })

  const addon = join(here, addonName())
  copyFileSync(join(targetDir, release ? 'release' : 'debug', cargoLibName()), addon)
  console.log(`build.mjs: ${addon}`)

  const config = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).napi || {}
  const { dts } = await generateTypeDef({
    typeDefDir,
    configDtsHeaderFile: config.dtsHeaderFile,
    constEnum: false,
    cwd: here,
    declareBindingTarget: true,
  })
  writeFileSync(dtsPath, dts)
  console.log(`build.mjs: ${dtsPath}`)
} finally {
  rmSync(typeDefDir, { recursive: true, force: true })
}
