"""Benchmark: lines/s and MB/s read from a flooding sim console through the async iterator.

    PYTHONPATH=target/py-stage python bindings/python/bench_read.py [SECONDS [RATE]]

RATE is the flood rate (`max`, `50M`, ...). The console never waits for a slow reader: bytes it
could not take in time are reported as missed.
"""

from __future__ import annotations

import asyncio
import sys
import time

import mo

LINE = 64  # bytes per flood line (mo-drivers/src/sim/flood.rs)


async def main(seconds: float, rate: str) -> None:
    async with mo.open("sim://bench?boot=none") as con:
        await con.expect("login: ")
        await con.send_line("root")
        await con.expect("Password: ")
        await con.send_line("pw")
        await con.expect(r":~\$ ")
        await con.send_line(f"flood {rate} {int(seconds) + 2}")
        await con.expect(r"\n0000000001 ")  # the first flood line has begun
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
    print(
        f"read {total / 1e6:.1f} MB in {elapsed:.2f} s through `async for`: "
        f"{total / LINE / elapsed:,.0f} lines/s, {total / 1e6 / elapsed:.1f} MB/s "
        f"({chunks} chunks, {total / max(chunks, 1) / 1024:.1f} KiB each, missed {con.missed} B)"
    )


if __name__ == "__main__":
    asyncio.run(
        main(
            float(sys.argv[1]) if len(sys.argv) > 1 else 3.0,
            sys.argv[2] if len(sys.argv) > 2 else "max",
        )
    )
