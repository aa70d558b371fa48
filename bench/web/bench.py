#!/usr/bin/env python3
"""Web console benchmark (issue 16), in Debian's Chromium driven by Playwright against a real
`mod --demo` on loopback:

  open     click on a device on the devices page -> first replayed line drawn in the terminal
           (p50/p99 over --opens clicks)
  flood    one console floods (`flood RATE`) in a background tab of the page while the keys typed
           into another console of the same page come back: input echo p50/p99, the page's JS heap
           (min/max during the flood) and the bytes the page skipped ("missed N bytes")
  fanout   --contexts browser contexts (separate sessions) spy on one console: time until all have
           drawn the replay, then the time a line typed by the holder takes to be drawn in all of
           them (p50/p99 over the contexts)

Prints figures only; asserts that every measurement completed (the echo came back, every context
drew the line). Usage:
  bench/web/bench.py [--opens N] [--flood-rate 10M] [--flood-seconds S] [--contexts N] [--tiny]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("MO_BIN_DIR", ROOT / "target" / "debug"))
CHROMIUM = os.environ.get("MO_CHROMIUM", "/usr/bin/chromium")


def die(msg: str) -> None:
    print(f"bench-web: {msg}", file=sys.stderr)
    sys.exit(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def fmt(xs: list[float]) -> str:
    return f"p50 {pct(xs, 50):.1f} ms, p99 {pct(xs, 99):.1f} ms, max {max(xs):.1f} ms (n={len(xs)})"


class Mod:
    def __init__(self, work: Path):
        for b in ("mod", "mo"):
            if not (BIN_DIR / b).is_file():
                die(f"{BIN_DIR / b} is missing: cargo build -j2 -p mo-daemon -p mo-cli")
        self.data = work / "data"
        self.ssh = free_port()
        self.http = free_port()
        self.base = f"http://127.0.0.1:{self.http}"
        subprocess.run([str(BIN_DIR / "mo"), "--data-dir", str(self.data), "user", "add", "watcher", "--password-stdin"], input="watcher-pw\n", text=True, check=True, capture_output=True)
        subprocess.run([str(BIN_DIR / "mo"), "--data-dir", str(self.data), "grant", "add", "watcher", "viewer", "all"], check=True, capture_output=True)
        self.log = open(work / "mod.log", "wb")
        self.p = subprocess.Popen([str(BIN_DIR / "mod"), "--demo", "--data-dir", str(self.data), "--ssh", f"127.0.0.1:{self.ssh}", "--http", f"127.0.0.1:{self.http}", "--max-connections-per-address", "1000"], stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 60
        while f"listening on 127.0.0.1:{self.ssh}".encode() not in (work / "mod.log").read_bytes():
            if self.p.poll() is not None or time.time() > deadline:
                die(f"mod did not start: {(work / 'mod.log').read_text(errors='replace')}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def login(browser, mod: Mod, user: str, pw: str):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=mod.base)
    page = ctx.new_page()
    page.set_default_timeout(60000)
    page.goto("/#/login")
    page.fill("#user", user)
    page.fill("#password", pw)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("body[data-page=devices] table.devices tbody tr")
    return ctx, page


def text(page, dev: str) -> str:
    return page.evaluate("(d) => window.__mo.termText(d)", dev)


def wait_text(page, dev: str, pattern: str, timeout: float = 60000) -> None:
    page.wait_for_function("([d, p]) => new RegExp(p).test(window.__mo.termText(d))", arg=[dev, pattern], timeout=timeout)


def shell(page, dev: str) -> None:
    wait_text(page, dev, r"login: $|:~\$ ?$")
    if text(page, dev).rstrip().endswith("$"):
        return
    page.evaluate("(d) => window.__mo.termSend(d, 'root\\r')", dev)
    wait_text(page, dev, r"Password: ?$")
    page.evaluate("(d) => window.__mo.termSend(d, 'pw\\r')", dev)
    wait_text(page, dev, r":~\$ ?$")


def open_console(page, dev: str) -> None:
    page.goto(f"/#/console/{dev}")
    page.wait_for_function("(d) => window.__mo.termRole(d) !== ''", arg=dev)


def bench_open(browser, mod: Mod, n: int) -> list[float]:
    ctx, page = login(browser, mod, "demo", "demo")
    out = []
    for i in range(n):
        dev = f"sim-0{1 + i % 5}"
        page.goto("/#/devices")
        page.wait_for_selector(f"tr[data-device={dev}] a.name")
        page.evaluate("() => window.__t0 = 0")
        page.evaluate("(d) => { window.__t0 = performance.now(); document.querySelector(`tr[data-device=${d}] a.name`).click(); }", dev)
        page.wait_for_function("(d) => window.__mo.termFirstDrawAt(d) > 0", arg=dev)
        out.append(page.evaluate("(d) => window.__mo.termFirstDrawAt(d) - window.__t0", dev))
        page.evaluate("(d) => window.__mo.closeTab(d)", dev)
    ctx.close()
    return out


def heap(cdp) -> float:
    m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
    return m.get("JSHeapUsedSize", 0) / 1e6


def bench_flood(browser, mod: Mod, rate: str, seconds: int, keys: int):
    ctx, page = login(browser, mod, "demo", "demo")
    cdp = ctx.new_cdp_session(page)
    cdp.send("Performance.enable")
    flood, echo = "sim-05", "sim-04"
    open_console(page, flood)
    shell(page, flood)
    open_console(page, echo)
    shell(page, echo)
    # `cat` echoes every key back (the tty echo), so each key has an answer.
    page.evaluate("(d) => window.__mo.termSend(d, 'cat\\r')", echo)
    base_heap = heap(cdp)
    page.evaluate("([d, r, s]) => window.__mo.termSend(d, `flood ${r} ${s}\\r`)", [flood, rate, seconds])
    page.wait_for_function("(d) => (window.__mo.termStats(d) || {bytes: 0}).bytes > 100000", arg=flood)
    # Inside the page: type one key at a time into the other console and wait for its echo to be
    # drawn; sample the JS heap (precise with --enable-precise-memory-info) after each.
    lat, heaps = page.evaluate(
        """async ([d, secs, keys]) => {
          const out = [], heap = [], letters = "abcdefghijklmnopqrstuvwxyz";
          const end = performance.now() + secs * 1000;
          for (let i = 0; i < keys && performance.now() < end; i++) {
            const c = letters[i % 26];
            out.push(await window.__mo.termEcho(d, c, c));
            heap.push(performance.memory ? performance.memory.usedJSHeapSize / 1e6 : 0);
            await new Promise(r => setTimeout(r, 20));
          }
          return [out, heap];
        }""",
        [echo, seconds, keys],
    )
    heaps.append(heap(cdp))
    page.evaluate("(d) => window.__mo.termSend(d, '\\x03')", flood)
    page.evaluate("(d) => window.__mo.termSend(d, '\\x04')", echo)
    stats = page.evaluate("(d) => window.__mo.termStats(d)", flood)
    missed = stats["missed"]
    ctx.close()
    if not lat:
        die("flood: no echo measured")
    print(f"web flood: {stats['bytes']} bytes reached the page in {stats['msgs']} messages")
    return lat, base_heap, min(heaps), max(heaps), missed


def bench_fanout(browser, mod: Mod, n: int):
    dev = "sim-03"
    holder_ctx, holder = login(browser, mod, "demo", "demo")
    open_console(holder, dev)
    shell(holder, dev)
    ctxs, pages = [], []
    t_login = time.time()
    # Log every context in through the API (the cookie lands in the context), then open the pages.
    for _ in range(n):
        c = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=mod.base)
        r = c.request.post(f"{mod.base}/api/v1/login", data={"user": "watcher", "password": "watcher-pw"})
        if not r.ok:
            die(f"fanout: login answered {r.status}: {r.text()}")
        ctxs.append(c)
    logins = time.time() - t_login
    t0 = time.time()
    for c in ctxs:
        p = c.new_page()
        p.set_default_timeout(300000)
        p.goto(f"/#/console/{dev}")
        pages.append(p)
    for p in pages:
        p.wait_for_function("(d) => window.__mo.termFirstDrawAt(d) > 0", arg=dev)
    all_open = time.time() - t0
    # Arm a probe for a marker byte in every page, then type a line holding it.
    mark = "~"
    for p in pages:
        p.evaluate("([d, m]) => { window.__echo = null; const t = window.__mo; window.__echoP = new Promise(r => { const f = () => { if (t.termText(d).includes('FAN' + m)) r(performance.now()); else requestAnimationFrame(f); }; f(); }); window.__echoP.then(v => window.__echo = v); }", [dev, mark])
    sent_wall = time.time()
    holder.evaluate("([d, m]) => window.__mo.termSend(d, `echo FAN${m}\\r`)", [dev, mark])
    lat = []
    for p in pages:
        p.wait_for_function("() => window.__echo !== null")
        # performance.now() differs per page: compare wall clocks via Date.now() at arrival.
        arrived = p.evaluate("() => Date.now() - (performance.now() - window.__echo)")
        lat.append(arrived - sent_wall * 1000)
    for c in ctxs:
        c.close()
    holder_ctx.close()
    return logins, all_open, lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--opens", type=int, default=50)
    ap.add_argument("--flood-rate", default="10M")
    ap.add_argument("--flood-seconds", type=int, default=10)
    ap.add_argument("--keys", type=int, default=200)
    ap.add_argument("--contexts", type=int, default=50)
    ap.add_argument("--parts", default="open,flood,fanout", help="which measurements (comma-separated)")
    ap.add_argument("--tiny", action="store_true", help="smoke size: 3 opens, 2 s flood at 1M, 3 contexts")
    a = ap.parse_args()
    if a.tiny:
        a.opens, a.flood_rate, a.flood_seconds, a.keys, a.contexts = 3, "1M", 2, 10, 3
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        die("the Python package playwright is missing: run scripts/setup.sh (it pins it in target/peers-venv)")
    if not Path(CHROMIUM).exists():
        die(f"{CHROMIUM} is missing: apt-get install chromium (scripts/setup.sh does)")
    work = Path(tempfile.mkdtemp(prefix="mo-bench-web-", dir=ROOT / "target"))
    mod = Mod(work)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage", "--enable-precise-memory-info"])
            parts = a.parts.split(",")
            if "open" in parts:
                opens = bench_open(browser, mod, a.opens)
                print(f"web open: click on a device -> first replayed line drawn: {fmt(opens)}")
            if "flood" in parts:
                lat, h0, hmin, hmax, missed = bench_flood(browser, mod, a.flood_rate, a.flood_seconds, a.keys)
                print(f"web flood {a.flood_rate}/s for {a.flood_seconds} s in a background tab: input echo on another console {fmt(lat)}; JS heap {h0:.1f} MB before, {hmin:.1f}..{hmax:.1f} MB during; page skipped {missed} bytes")
            if "fanout" in parts:
                logins, all_open, fan = bench_fanout(browser, mod, a.contexts)
                print(f"web fanout: {a.contexts} browser contexts spying on one console: {a.contexts} logins {logins:.1f} s; all pages drew the replay {all_open:.1f} s after the first was opened; a typed line drawn in all: {fmt(fan)}")
            browser.close()
    finally:
        mod.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
