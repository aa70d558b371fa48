"""Browser tests of the web console (issue 16): a real `mod --demo` on free loopback ports with its
own data directory, Debian's Chromium driven by Playwright (launched by executable_path; nothing
downloads a browser), a real snmpd PDU for the power menu.

Run with scripts/test-web.sh (builds mod and mo first). Environment:
  MO_BIN_DIR   where `mod` and `mo` are (default target/debug)
  MO_CHROMIUM  the browser (default /usr/bin/chromium)
  MO_WEB_KEEP  keep target/web-tests/run-PID (data directory, mod.log, snmpd) after the run
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("MO_BIN_DIR", ROOT / "target" / "debug"))
CHROMIUM = os.environ.get("MO_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "target" / "web-screenshots"
WORK = ROOT / "target" / "web-tests"

# Users the tests log in as (the demo's `demo`/`demo` is an admin on everything).
USERS = {
    # may attach and force on every device, read logs (with input), write notes, see power
    "alice": ("alice-Web-pw-1", "webops", "all"),
    # may only watch (spy) and read logs
    "bob": ("bob-Web-pw-2", "viewer", "all"),
    # may only see the group `lab` (sim-02): not sim-01, not its log
    "carol": ("carol-Web-pw-3", "viewer", "lab"),
}
WEBOPS = "list,spy,attach,force,join,break,log.read,log.read_input,log.note,power.status"
POWER_DEVICE = "pdu-srv"
POWER_OUTLET = 3
DEAD_DEVICE = "dead-01"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need_file(path: str | Path, what: str) -> None:
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: {what}", pytrace=False)


class Proc:
    """A process this test run started; stopped by its PID only."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict | None = None):
        self.name = name
        self.log = log
        self.logf = open(log, "ab")
        self.p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self.logf,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=10)
        self.logf.close()


class Snmpd:
    """net-snmp snmpd as an 8-outlet APC PDU (tests/peers/snmpd-apc.conf, apc_pass.py)."""

    def __init__(self, directory: Path):
        need_file("/usr/sbin/snmpd", "install Debian's snmpd (scripts/setup.sh does)")
        need_file("/usr/bin/snmpget", "install Debian's snmp (scripts/setup.sh does)")
        self.dir = directory
        (directory / "persist").mkdir(parents=True, exist_ok=True)
        self.port = free_port(socket.SOCK_DGRAM)
        peers = ROOT / "tests" / "peers"
        conf = (peers / "snmpd-apc.conf").read_text()
        conf = conf.replace("@DIR@", str(directory)).replace("udp:127.0.0.1:16161", f"udp:127.0.0.1:{self.port}")
        (directory / "snmpd.conf").write_text(conf)
        shutil.copy(peers / "apc_pass.py", directory / "apc_pass.py")
        self.proc = Proc(
            "snmpd",
            ["/usr/sbin/snmpd", "-f", "-C", "-c", str(directory / "snmpd.conf"), "-Lf", str(directory / "snmpd.log"), "-p", str(directory / "snmpd.pid")],
            directory / "snmpd.out",
            env={"MIBS": "", "SNMP_PERSISTENT_DIR": str(directory / "persist")},
        )
        deadline = time.time() + 15
        while True:
            ok = subprocess.run(
                ["snmpget", "-v2c", "-c", "public", "-t", "0.5", "-r", "0", f"127.0.0.1:{self.port}", ".1.3.6.1.2.1.1.5.0"],
                env={**os.environ, "MIBS": ""},
                capture_output=True,
            ).returncode == 0
            if ok:
                return
            if self.proc.p.poll() is not None or time.time() > deadline:
                log = (directory / "snmpd.log").read_text(errors="replace") if (directory / "snmpd.log").exists() else ""
                self.proc.stop()
                pytest.fail(f"snmpd did not answer on udp 127.0.0.1:{self.port}: {log}", pytrace=False)
            time.sleep(0.1)

    def outlet(self, n: int) -> int:
        """1 on, 2 off (all on before the first set)."""
        try:
            return int(json.loads((self.dir / "outlets.json").read_text())[str(n)])
        except (OSError, ValueError, KeyError):
            return 1

    def stop(self) -> None:
        self.proc.stop()


class Daemon:
    """`mod --demo` on free loopback ports with its own data directory."""

    def __init__(self, work: Path, snmpd: Snmpd, extra_args: tuple[str, ...] = ()):
        need_file(BIN_DIR / "mod", "build it: cargo build -j2 -p mo-daemon -p mo-cli (scripts/test-web.sh does)")
        need_file(BIN_DIR / "mo", "build it: cargo build -j2 -p mo-daemon -p mo-cli (scripts/test-web.sh does)")
        self.work = work
        self.data = work / "data"
        self.ssh_port = free_port()
        self.http_port = free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        # Users, roles, groups and the power-switched device, written before the daemon starts.
        self.mo("device", "add", POWER_DEVICE, f"sim://{POWER_DEVICE}?boot=none", "--power", f"snmp://127.0.0.1:{snmpd.port}/apc/{POWER_OUTLET}", "--description", "server on a real snmpd PDU outlet")
        self.mo("secret", "set", POWER_DEVICE, "snmp_auth", "--stdin", stdin="private\n")
        # A device whose link cannot come up (nothing listens on its port): the console's banner.
        self.mo("device", "add", DEAD_DEVICE, f"tcp://127.0.0.1:{free_port()}", "--description", "nothing listens here")
        self.mo("role", "add", "webops", "--allow", WEBOPS)
        self.mo("group", "add", "lab", "--member", "sim-02")
        for user, (pw, role, group) in USERS.items():
            self.mo("user", "add", user, "--password-stdin", stdin=pw + "\n")
            self.mo("grant", "add", user, role, group)
        self.proc = Proc(
            "mod",
            [str(BIN_DIR / "mod"), "--demo", "--data-dir", str(self.data), "--ssh", f"127.0.0.1:{self.ssh_port}", "--http", f"127.0.0.1:{self.http_port}", *extra_args],
            work / "mod.log",
            env={"NO_COLOR": "1", "RUST_BACKTRACE": "1"},
        )
        needle = f"listening on 127.0.0.1:{self.ssh_port}"
        deadline = time.time() + 60
        while needle not in self.proc.text():
            if self.proc.p.poll() is not None or time.time() > deadline:
                self.proc.stop()
                pytest.fail(f"mod did not start: {self.proc.text()}", pytrace=False)
            time.sleep(0.05)

    def mo(self, *args: str, stdin: str | None = None) -> str:
        r = subprocess.run([str(BIN_DIR / "mo"), "--data-dir", str(self.data), *args], input=stdin, capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"mo {' '.join(args)} failed: {r.stderr}", pytrace=False)
        return r.stdout

    def stop(self) -> None:
        self.proc.stop()


@pytest.fixture(scope="session")
def playwright_mod():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the Python package playwright is missing: run scripts/setup.sh (pip install playwright==1.65.3 into "
            "target/peers-venv; never `playwright install`, the browser is Debian's chromium)",
            pytrace=False,
        )
    return sync_playwright


@pytest.fixture(scope="session")
def browser(playwright_mod):
    need_file(CHROMIUM, "install Debian's chromium (apt-get install chromium; scripts/setup.sh does)")
    with playwright_mod() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def work():
    d = WORK / f"run-{os.getpid()}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield d
    # After every fixture that uses it has stopped (snmpd writes its files as it exits).
    if os.environ.get("MO_WEB_KEEP") is None:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def snmpd(work):
    s = Snmpd(work / "snmpd")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def daemon(work, snmpd):
    d = Daemon(work, snmpd)
    yield d
    d.stop()


def password(user: str) -> str:
    return "demo" if user == "demo" else USERS[user][0]


def login(browser, daemon, user: str, viewport=(1280, 800)):
    """A fresh browser context logged in as USER, on the devices page. Returns (context, page)."""
    ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, base_url=daemon.base)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=daemon.base)
    page = ctx.new_page()
    page.set_default_timeout(20000)
    page.goto("/#/login")
    page.wait_for_selector("#user")
    page.fill("#user", user)
    page.fill("#password", password(user))
    page.click("form.login button[type=submit]")
    page.wait_for_selector("body[data-page=devices] table.devices tbody tr")
    return ctx, page


def term_text(page, device: str) -> str:
    return page.evaluate("(d) => window.__mo.termText(d)", device)


def wait_term(page, device: str, pattern: str, timeout: float = 20000) -> str:
    """Wait until the terminal of DEVICE shows text matching the regex PATTERN; returns the text."""
    page.wait_for_function(
        "([d, p]) => new RegExp(p).test(window.__mo.termText(d))",
        arg=[device, pattern],
        timeout=timeout,
    )
    return term_text(page, device)


def open_console(page, device: str) -> None:
    page.goto(f"/#/console/{device}")
    page.wait_for_selector(f".term[data-device='{device}'] .xterm")
    page.wait_for_function("(d) => window.__mo.termRole(d) !== ''", arg=device)


def type_line(page, device: str, line: str) -> None:
    page.click(f".term[data-device='{device}']")
    page.keyboard.type(line)
    page.keyboard.press("Enter")


def shell(page, device: str) -> None:
    """Bring the sim behind DEVICE to its shell prompt (log in if it sits at `login:`)."""
    wait_term(page, device, r"login: $|:~\$ ?$|Password: ?$", timeout=30000)
    last = term_text(page, device).rstrip("\n").split("\n")[-1]
    if last.rstrip().endswith("$"):
        return
    if "Password" not in last:
        type_line(page, device, "root")
        wait_term(page, device, r"Password: ?$")
    type_line(page, device, "pw")
    wait_term(page, device, r":~\$ ?$")


def screenshot(page, name: str) -> None:
    """target/web-screenshots/NAME-1280x800.png and NAME-390x844.png."""
    before = page.viewport_size
    for w, h in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": w, "height": h})
        # two animation frames: the layout after the resize is drawn
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.screenshot(path=str(SHOTS / f"{name}-{w}x{h}.png"))
    if before:
        page.set_viewport_size(before)


def marker(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{int(time.time() * 1000) % 100000}"


__all__ = ["login", "open_console", "type_line", "shell", "wait_term", "term_text", "screenshot", "marker", "re"]
