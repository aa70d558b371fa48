"""Follow a daemon's events (console patterns such as kernel panics, link changes, ...).

    MO_TOKEN=... python examples/python/follow_events.py http://127.0.0.1:8022 [DEVICE]
"""

from __future__ import annotations

import asyncio
import os
import sys

import mo


async def main(server: str, device: str | None) -> None:
    client = mo.Client(server, os.environ.get("MO_TOKEN", ""))
    for ev in await client.list_events(device=device, limit=10):
        print(f"{ev['time']} {ev['device']} {ev['severity']}: {ev['text']}  (earlier)")
    async for ev in client.events(device=device):
        print(f"{ev['time']} {ev['device']} {ev['severity']}: {ev['text']}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: follow_events.py SERVER_URL [DEVICE]")
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
    except KeyboardInterrupt:
        pass
    except mo.MoError as e:
        sys.exit(f"follow_events: {e}")
