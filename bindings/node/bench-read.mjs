// Benchmark: MB/s read from a flooding sim console through the async iterator.
// Usage: node bench-read.mjs [SECONDS=5] [RATE=max]   (RATE as the sim's `flood` takes it: 100M,
// max; build the package first: npm run build). Bytes the reader was too slow for are `missed`.
import { createRequire } from 'node:module'

const mo = createRequire(import.meta.url)('./index.js')
const seconds = Number(process.argv[2] || 5)
const rate = process.argv[3] || 'max'

const con = await mo.open('sim://bench?boot=none')
await con.expect([/login: $/], 10000)
await con.sendLine('root')
await con.expect(['Password: '], 5000)
await con.sendLine('x')
await con.expect([/bench:~\$ /], 5000)
await con.sendLine(`flood ${rate}`)

let bytes = 0
let chunks = 0
let started = 0
const warmup = 256 * 1024
for await (const chunk of con) {
  if (!started) {
    bytes += chunk.length
    if (bytes >= warmup) {
      started = performance.now()
      bytes = 0
    }
    continue
  }
  bytes += chunk.length
  chunks++
  if (performance.now() - started >= seconds * 1000) break
}
const secs = (performance.now() - started) / 1000
await con.write(Buffer.from([3])) // Ctrl-C stops the flood
await con.close()
const mb = bytes / 1e6
console.log(
  `node async iterator, flood ${rate}: ${mb.toFixed(1)} MB in ${secs.toFixed(2)} s = ${(mb / secs).toFixed(1)} MB/s ` +
    `(${chunks} chunks, ${(bytes / Math.max(chunks, 1) / 1024).toFixed(1)} KiB/chunk, missed ${con.missed} bytes)`,
)
