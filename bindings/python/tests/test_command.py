"""pexpect/Netmiko-style calls: send_command (with the sim's --More-- pager), logfile=,
interact() under a real pty, and reading a record log with mo.Log."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

import mo
import mo.sync
from conftest import Daemon


def login_sync(con: mo.sync.SyncConsole, device: str) -> None:
    con.expect("login: ")
    con.send_line("root")
    con.expect("Password: ")
    con.send_line("pw")
    con.expect(device + r":~\$ ")


def test_send_command_learns_the_prompt_and_answers_the_pager() -> None:
    with mo.sync.open("sim://cmd01?boot=none&pager=4") as con:
        login_sync(con, "cmd01")
        assert con.send_command("echo hello") == "hello"
        assert con.send_command("seq 25") == "\n".join(str(n) for n in range(1, 26))
        assert con.send_command("true") == ""
        assert con.find_prompt() == "cmd01:~$"
        assert con.send_command("uname", prompt=r"cmd01:~\$ $") == "Linux"
        with pytest.raises(mo.TimeoutError) as info:
            con.send_command("cat", timeout=0.3)
        assert "cat" in str(info.value)
        con.write(b"\x04")
        con.expect(r"cmd01:~\$ ")
        assert con.send_command("echo again", timeout=10) == "again"
        with pytest.raises(mo.InvalidArgument):
            con.send_command("x", prompt="(")


@pytest.mark.asyncio
async def test_send_command_async() -> None:
    async with mo.open("sim://cmd02?boot=none&pager=3") as con:
        await con.expect("login: ")
        await con.send_line("root")
        await con.expect("Password: ")
        await con.send_line("pw")
        await con.expect(r"cmd02:~\$ ")
        assert await con.find_prompt() == "cmd02:~$"
        out = await con.send_command("help")
        assert out.startswith("Commands of this simulated machine:\n"), out
        assert "--More--" not in out and "seq [FIRST] LAST" in out, out
        assert out.endswith("Send BREAK for the boot monitor."), out


def test_send_command_through_the_daemon(daemon: Daemon) -> None:
    client = mo.sync.Client(daemon.url, daemon.token)
    with client.attach("sim-04") as con:
        con.send_line("")
        con.expect("login: ", timeout=30)
        con.send_line("demo")
        con.expect("Password: ")
        con.send_line("pw")
        con.expect(r"sim-04:~\$ ", timeout=10)
        transcript = io.BytesIO()
        con.set_logfile(transcript)
        assert con.send_command("seq 3") == "1\n2\n3"
        con.set_logfile(None)
        assert con.send_command("hostname") == "sim-04"
        assert b"seq 3\r\n1\r\n2\r\n3\r\n" in transcript.getvalue()
        assert b"sim-04\r\n" not in transcript.getvalue()


def test_logfile_path_binary_and_text_files(tmp_path: Path) -> None:
    path = tmp_path / "transcript.log"
    binary = io.BytesIO()
    text = io.StringIO()
    for logfile, sent in ((str(path), False), (binary, True), (text, False)):
        with mo.sync.open("sim://log01?boot=none", logfile=logfile, logfile_sent=sent) as con:
            login_sync(con, "log01")
            assert con.send_command("echo transcribed") == "transcribed"
    on_disk = path.read_bytes()
    assert b"log01 login: " in on_disk and b"\r\ntranscribed\r\n" in on_disk
    # The password is never echoed: only the transcript with what was sent has it.
    assert b"pw\r" not in on_disk
    assert b"pw\r" in binary.getvalue()
    assert "\r\ntranscribed\r\n" in text.getvalue()
    with pytest.raises(mo.InvalidArgument):
        mo.sync.open("sim://log02?boot=none", logfile=42)  # type: ignore[arg-type]


def settled(log: mo.Log) -> None:
    """Wait until the log stops growing: the console stopped after close() has returned and
    writes its last records then."""
    count, deadline = -1, time.monotonic() + 10
    while time.monotonic() < deadline:
        now = len(list(log.records()))
        if now == count:
            return
        count = now
        time.sleep(0.3)


def test_log_records_ranges_search_and_verify(tmp_path: Path) -> None:
    logs = tmp_path / "log03"
    with mo.sync.open("sim://log03?boot=none", log_dir=str(logs), user="alice") as con:
        login_sync(con, "log03")
        middle = time.time()
        assert con.send_command("echo needle-42") == "needle-42"
        con.note("a note")
    log = mo.Log(logs)
    settled(log)
    assert log.path == str(logs)
    records = list(log.records())
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    typed = [r for r in records if r.kind == "input"]
    assert any(r.data == b"echo needle-42\r" and r.user == "alice" for r in typed), typed
    assert any(r.kind == "note" and r.text == "a note" for r in records)
    assert all(r.time.endswith("Z") and r.time_ns > 0 for r in records)
    later = list(log.records(since=middle))
    assert 0 < len(later) < len(records)
    assert all(r.time_ns >= int(middle * 1e9) for r in later)
    assert list(log.records(until=middle - 3600)) == []
    assert [r.seq for r in log.records(since="1h")] == [r.seq for r in records]
    assert [r.seq for r in log.records(from_seq=3)][0] == 3
    assert [r.seq for r in log.tail(2)] == [len(records) - 1, len(records)]
    hits = log.search(r"needle-\d+")
    assert any(line.endswith("needle-42") for line in hits), hits
    assert log.search("NEEDLE", ignore_case=True)
    assert log.search("no such text") == []
    report = log.verify()
    assert report["ok"] and report["problem"] is None
    assert report["records"] == len(records)
    # A changed byte breaks the chain, and verify says where.
    segment = sorted(logs.glob("*.mlog"))[0]
    data = bytearray(segment.read_bytes())
    at = data.index(b"needle-42")
    data[at] ^= 0x20
    segment.write_bytes(bytes(data))
    report = mo.Log(logs).verify()
    assert not report["ok"] and report["problem"], report
    with pytest.raises(mo.NotFound):
        mo.Log(tmp_path / "nothing-here")
    with pytest.raises(mo.InvalidArgument):
        log.records(since=[1])


INTERACT = """
import sys
import mo.sync
with mo.sync.open("sim://ia01?boot=none") as con:
    con.expect("login: ")
    con.send_line("root")
    con.expect("Password: ")
    con.send_line("pw")
    con.expect(r"ia01:~\\$ ")
    sys.stdout.write("INTERACT\\n")
    sys.stdout.flush()
    con.interact()
    sys.stdout.write("BACK\\n")
    sys.stdout.flush()
    line = input()
    sys.stdout.write("GOT " + line + "\\n")
"""


def read_until(fd: int, want: bytes, seen: bytearray, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while want not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {want!r} in {bytes(seen)!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            raise AssertionError(f"pty closed before {want!r}: {bytes(seen)!r}") from None
        seen.extend(chunk)


def test_interact_under_a_real_pty() -> None:
    master, slave = os.openpty()
    cooked = termios.tcgetattr(slave)[3]
    assert cooked & termios.ICANON
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERACT],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        close_fds=True,
    )
    try:
        seen = bytearray()
        read_until(master, b"INTERACT", seen)
        # The terminal is the console's now: raw, keys go to the sim, its output comes back.
        os.write(master, b"echo inside\r")
        read_until(master, b"\r\ninside\r\n", seen)
        assert not termios.tcgetattr(slave)[3] & termios.ICANON
        # ^Ec? shows the help, ^Ec. ends; the terminal is cooked again.
        os.write(master, b"\x05c?")
        read_until(master, b"disconnect", seen)
        os.write(master, b"\x05c.")
        read_until(master, b"BACK", seen)
        assert termios.tcgetattr(slave)[3] == cooked
        os.write(master, b"after\n")
        read_until(master, b"GOT after", seen)
        assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


def test_the_send_command_example_runs_on_a_sim() -> None:
    # MO_EXAMPLES_DIR: the checkout's examples when the suite runs from a copy (test-install.sh).
    examples = os.environ.get("MO_EXAMPLES_DIR") or Path(__file__).resolve().parents[3] / "examples"
    example = Path(examples) / "python" / "send_command.py"
    done = subprocess.run(
        [sys.executable, str(example), "sim://ex01?boot=none&pager=5", "seq 12", "hostname"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    want = "\n".join(str(n) for n in range(1, 13))
    assert f"--- seq 12 (12 lines)\n{want}\n--- hostname (1 lines)\nex01\n" in done.stdout
    assert "prompt: 'ex01:~$'" in done.stdout
    assert "the commands typed: ['seq 12', 'hostname']" in done.stdout, done.stdout
    assert "--- log: verify ok=True" in done.stdout
