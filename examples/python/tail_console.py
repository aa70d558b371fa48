"""Tail a console: print its output as it comes.

    python examples/python/tail_console.py sim://web01             # embedded, no daemon
    MO_TOKEN=... python examples/python/tail_console.py --server http://127.0.0.1:8022 sim-01
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import mo


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("target", help="an address (embedded) or a device name (with --server)")
    ap.add_argument("--server", help="the daemon's base URL; the token is $MO_TOKEN")
    ap.add_argument("--replay", type=int, default=20, help="lines of recent output first")
    args = ap.parse_args()
    if args.server:
        client = mo.Client(args.server, os.environ.get("MO_TOKEN", ""))
        opening = client.attach(args.target, mode="spy", replay=args.replay)
    else:
        opening = mo.open(args.target, mode="spy", replay=args.replay)
    async with opening as con:
        async for chunk in con:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
