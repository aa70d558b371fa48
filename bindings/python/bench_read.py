"""Benchmark: read throughput of a flooding sim console through the async iterator, and expect
latency (``send_line`` of an ``echo`` and ``expect`` of its output line, p50/p99).

    PYTHONPATH=target/py-stage python bindings/python/bench_read.py [SECONDS [RATE [ITERATIONS]]]

RATE is the flood rate (`max`, `50M`, ...). The console never waits for a slow reader: bytes it
could not take in time are reported as missed. The last line, ``BENCH python MB/s lines/s p50 p99``
(milliseconds), is what scripts/bench-bindings.sh collects; ``mo-bench facade`` measures the same
through the Rust facade.
"""

from __future__ import annotations

import asyncio
import sys
import time

import mo

LINE = 64  # bytes per flood line (mo-drivers/src/sim/flood.rs)


async def expect_latency(con: mo.Console, iterations: int) -> tuple[float, float]:
    """``iterations`` round trips of ``send_line("echo lat-N")`` and ``expect`` of the output
    line: p50 and p99 in milliseconds."""
    ms: list[float] = []
    for i in range(iterations):
        start = time.perf_counter()
        await con.send_line(f"echo lat-{i}")
        await con.expect(rf"\nlat-{i}\r?\n", timeout=10)
        ms.append((time.perf_counter() - start) * 1e3)
    ms.sort()

    def quantile(q: float) -> float:
        return ms[min(round((len(ms) - 1) * q), len(ms) - 1)] if ms else float("nan")

    return quantile(0.50), quantile(0.99)


async def main(seconds: float, rate: str, iterations: int) -> None:
    async with mo.open("sim://bench?boot=none") as con:
        await con.expect("login: ")
        await con.send_line("root")
        await con.expect("Password: ")
        await con.send_line("pw")
        await con.expect(r":~\$ ")
        p50, p99 = await expect_latency(con, iterations)
        await con.send_line(f"flood {rate} {int(seconds) + 2}")
        await con.expect(r"\n\d{10} ")  # flood lines have begun (the first may be missed)
        total = 0
        chunks = 0
        start = time.perf_counter()
        async for chunk in con:
            total += len(chunk)
            chunks += 1
            if time.perf_counter() - start >= seconds:
                break
        elapsed = time.perf_counter() - start
        await con.write(b"\x03")
    mb_s, lines_s = total / 1e6 / elapsed, total / LINE / elapsed
    print(
        f"read {total / 1e6:.1f} MB in {elapsed:.2f} s through `async for`: "
        f"{lines_s:,.0f} lines/s, {mb_s:.1f} MB/s "
        f"({chunks} chunks, {total / max(chunks, 1) / 1024:.1f} KiB each, missed {con.missed} B); "
        f"expect p50 {p50:.2f} ms, p99 {p99:.2f} ms ({iterations} round trips)"
    )
    print(f"BENCH python {mb_s:.2f} {lines_s:.0f} {p50:.3f} {p99:.3f}")


if __name__ == "__main__":
    asyncio.run(
        main(
            float(sys.argv[1]) if len(sys.argv) > 1 else 3.0,
            sys.argv[2] if len(sys.argv) > 2 else "max",
            int(sys.argv[3]) if len(sys.argv) > 3 else 200,
        )
    )
