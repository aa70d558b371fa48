# frozen_string_literal: true

# Benchmark of the uniffi bindings from Ruby (issue 19's per-binding comparison, beside
# bench/src/facade.rs, bindings/python/bench_read.py and bindings/node/bench-read.mjs, which
# measure the same two things with the same parameters): expect latency (`send_line` of
# `echo lat-N` and `expect` of its output line, p50/p99) and read throughput of a flooding sim
# console through the blocking `read`.
#
#   MO_FFI_RUBY_DIR=DIR LD_LIBRARY_PATH=target/release ruby bindings/uniffi/bench_read.rb [SECONDS [RATE [ITERATIONS]]]
#
# DIR holds the generated `mo.rb` (`uniffi-bindgen generate --library libmo_ffi.so --language
# ruby --out-dir DIR`; scripts/bench-bindings.sh and scripts/test-ffi.sh do that). The console
# never waits for a slow reader: what it could not hand over in time is counted as missed.

ruby_dir = ENV.fetch('MO_FFI_RUBY_DIR') { abort 'bench_read.rb: MO_FFI_RUBY_DIR is not set (see the header)' }
$LOAD_PATH.unshift(ruby_dir)
require 'mo'

LINE = 64 # bytes per flood line (mo-drivers/src/sim/flood.rs)

seconds = Float(ARGV.fetch(0, '3'))
rate = ARGV.fetch(1, 'max')
iterations = Integer(ARGV.fetch(2, '200'))

def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

con = Mo.open('sim://bench?boot=none')
begin
  con.expect(['login: '])
  con.send_line('root')
  con.expect(['Password: '])
  con.send_line('pw')
  con.expect([':~\\$ '])

  ms = Array.new(iterations) do |i|
    start = now
    con.send_line("echo lat-#{i}")
    con.expect(["\\nlat-#{i}\\r?\\n"], 10.0)
    (now - start) * 1e3
  end.sort
  quantile = ->(q) { ms.empty? ? Float::NAN : ms[[((ms.length - 1) * q).round, ms.length - 1].min] }
  p50 = quantile.call(0.50)
  p99 = quantile.call(0.99)

  con.send_line("flood #{rate} #{seconds.to_i + 2}")
  flooding = con.expect(['\\n\\d{10} '], 10.0) # flood lines have begun (the first may be missed)
  total = 0
  chunks = 0
  start = now
  while now - start < seconds
    chunk = con.read
    break if chunk.nil?

    total += chunk.bytesize
    chunks += 1
  end
  elapsed = now - start
  con.write("\x03".b)
  raise "bench_read.rb: nothing read from the flood (#{flooding.matched.inspect} seen first)" if total.zero?
ensure
  con&.close
end

mb_s = total / 1e6 / elapsed
lines_s = total / LINE / elapsed
puts format('read %.1f MB in %.2f s through read: %d lines/s, %.1f MB/s (%d chunks, %.1f KiB each); ' \
            'expect p50 %.2f ms, p99 %.2f ms (%d round trips)',
            total / 1e6, elapsed, lines_s, mb_s, chunks, total / [chunks, 1].max / 1024.0, p50, p99, iterations)
puts format('BENCH ruby %.2f %.0f %.3f %.3f', mb_s, lines_s, p50, p99)
