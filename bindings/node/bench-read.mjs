// Benchmark: read throughput of a flooding sim console through the async iterator, and expect
// latency (sendLine of an `echo` and expect of its output line, p50/p99).
// Usage: node bench-read.mjs [SECONDS=5] [RATE=max] [ITERATIONS=200]   (RATE as the sim's `flood`
// takes it: 100M, max; build the package first: npm run build). Bytes the reader was too slow for
// are `missed`. The last line, `BENCH node MB/s lines/s p50 p99` (milliseconds), is what
// scripts/bench-bindings.sh collects; `mo-bench facade` measures the same through the Rust facade.
import { createRequire } from 'node:module'

const mo = createRequire(import.meta.url)('./index.js')
const seconds = Number(process.argv[2] || 5)
const rate = process.argv[3] || 'max'
const iterations = Number(process.argv[4] || 200)
const LINE = 64 // bytes per flood line (mo-drivers/src/sim/flood.rs)

const con = await mo.open('sim://bench?boot=none')
await con.expect([/login: $/], 10000)
await con.sendLine('root')
await con.expect(['Password: '], 5000)
await con.sendLine('x')
await con.expect([/bench:~\$ /], 5000)

// iterations round trips of sendLine('echo lat-N') and expect of the output line.
const ms = []
for (let i = 0; i < iterations; i++) {
  const t = performance.now()
  await con.sendLine(`echo lat-${i}`)
  await con.expect([new RegExp(`\\nlat-${i}\\r?\\n`)], 10000)
  ms.push(performance.now() - t)
}
ms.sort((a, b) => a - b)
const quantile = (q) => (ms.length ? ms[Math.min(Math.round((ms.length - 1) * q), ms.length - 1)] : NaN)
const [p50, p99] = [quantile(0.5), quantile(0.99)]

await con.sendLine(`flood ${rate} ${Math.floor(seconds) + 2}`)
await con.expect([/\n\d{10} /], 10000) // flood lines have begun (the first may be missed)
let bytes = 0
let chunks = 0
const started = performance.now()
for await (const chunk of con) {
  bytes += chunk.length
  chunks++
  if (performance.now() - started >= seconds * 1000) break
}
const secs = (performance.now() - started) / 1000
await con.write(Buffer.from([3])) // Ctrl-C stops the flood
await con.close()
const mbs = bytes / 1e6 / secs
const liness = bytes / LINE / secs
console.log(
  `node async iterator, flood ${rate}: ${(bytes / 1e6).toFixed(1)} MB in ${secs.toFixed(2)} s = ${mbs.toFixed(1)} MB/s, ` +
    `${liness.toFixed(0)} lines/s (${chunks} chunks, ${(bytes / Math.max(chunks, 1) / 1024).toFixed(1)} KiB/chunk, ` +
    `missed ${con.missed} bytes); expect p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms (${iterations} round trips)`,
)
console.log(`BENCH node ${mbs.toFixed(2)} ${liness.toFixed(0)} ${p50.toFixed(3)} ${p99.toFixed(3)}`)
