"""Power-cycle a device while its console stays open and capture the boot up to the login prompt.

    MO_TOKEN=... python examples/python/power_cycle_capture.py http://127.0.0.1:8022 web01

The device needs a power controller (`mo device set web01 --power URL`).
"""

from __future__ import annotations

import asyncio
import os
import sys

import mo


async def main(server: str, device: str) -> None:
    client = mo.Client(server, os.environ.get("MO_TOKEN", ""))
    # Spy first, so nothing of the boot is missed; then switch the power.
    async with client.attach(device, mode="spy", replay=0) as con:
        print(await client.power(device, "cycle"))
        boot = await con.expect(r"login: ?$", timeout=300)
        print(f"captured {len(boot.before)} characters of boot before {boot.matched!r}:")
        print(boot.before)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: power_cycle_capture.py SERVER_URL DEVICE")
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2]))
    except mo.MoError as e:
        sys.exit(f"power_cycle_capture: {e}")
