"""The blocking API (mo.sync)."""

from __future__ import annotations

import builtins
import threading

import pytest

import mo
import mo.sync


def test_sync_login_echo_and_who() -> None:
    with mo.sync.open("sim://sync01?boot=none", user="bob") as con:
        assert con.device == "sync01"
        con.expect("login: ")
        con.send_line("root")
        con.expect("Password: ")
        con.send_line("pw")
        con.expect(r"sync01:~\$ ")
        con.send_line("echo sync-works")
        m = con.expect(["nope", r"sync-(\w+)\n"])
        assert (m.index, m.captures) == (1, ["works"])
        assert [v.user for v in con.who()] == ["bob"]


def test_sync_iteration_and_timeout() -> None:
    con = mo.sync.open("sim://sync02?boot=none")
    seen = b""
    for chunk in con:
        seen += chunk
        if b"login: " in seen:
            break
    with pytest.raises(mo.TimeoutError):
        con.expect("never", timeout=0.2)
    with pytest.raises(builtins.TimeoutError):
        con.expect("never", timeout=0.2)
    con.close()
    assert con.read() == b""
    assert list(con) == []


def test_sync_from_threads() -> None:
    results: dict[int, str] = {}

    def run(i: int) -> None:
        with mo.sync.open(f"sim://thr{i}?boot=none") as con:
            con.expect("login: ")
            con.send_line("root")
            con.expect("Password: ")
            con.send_line("pw")
            con.expect(r":~\$ ")
            con.send_line(f"echo t{i}x")
            results[i] = con.expect(r"t(\d+)x\n").captures[0] or ""

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {i: str(i) for i in range(8)}
