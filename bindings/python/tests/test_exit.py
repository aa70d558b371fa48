"""Issue 13 item 11: the interpreter never crashes at exit.

Short scripts that open an embedded console, talk to it and end (asyncio and blocking) are run
many times in fresh interpreters; every run must exit 0 with the expected output — no
`Fatal Python error: PyGILState_Release`, no abort, no segfault. Before the fix about 7 in 100
runs of the asyncio script aborted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

RUNS = 50

ASYNC_SCRIPT = """
import asyncio, mo
async def main():
    async with mo.open('exec:///bin/cat') as c:
        await c.write(b'hello\\n'); print(await c.expect(['hello'], timeout=5))
asyncio.run(main())
"""

SYNC_SCRIPT = """
import mo.sync
with mo.sync.open('exec:///bin/cat') as c:
    c.write(b'hello\\n'); print(c.expect(['hello'], timeout=5))
"""

# The console is left open: the interpreter exits with runtime work still going.
UNCLOSED_SCRIPT = """
import asyncio, mo
async def main():
    c = await mo.open('exec:///bin/cat')
    await c.write(b'hello\\n'); print(await c.expect(['hello'], timeout=5))
    asyncio.ensure_future(c.read())
asyncio.run(main())
"""

WANT = 'Match(index=0, matched="hello", before="")'


def run_many(script: str, runs: int) -> list[str]:
    """Run `script` `runs` times (two at a time); the failures, described."""

    def one(i: int) -> str | None:
        p = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
            env=os.environ.copy(),
        )
        if p.returncode != 0 or p.stdout.strip() != WANT:
            return f"run {i}: exit {p.returncode}, stdout {p.stdout!r}, stderr {p.stderr[-400:]!r}"
        return None

    with ThreadPoolExecutor(max_workers=2) as pool:
        return [f for f in pool.map(one, range(runs)) if f is not None]


def check(script: str) -> None:
    start = time.monotonic()
    failures = run_many(script, RUNS)
    took = time.monotonic() - start
    assert not failures, f"{len(failures)} of {RUNS} runs crashed:\n" + "\n".join(failures)
    assert took < 60, f"{RUNS} runs took {took:.0f} s"


def test_asyncio_script_exits_cleanly_every_time() -> None:
    check(ASYNC_SCRIPT)


def test_sync_script_exits_cleanly_every_time() -> None:
    check(SYNC_SCRIPT)


def test_exit_with_an_open_console_and_a_pending_read() -> None:
    check(UNCLOSED_SCRIPT)
