"""`expect` vocabulary shared with Node: regexes by default, literal strings with `literal=True`,
one default timeout (30 s)."""

from __future__ import annotations

import inspect

import pytest

import mo
import mo.sync


def test_expect_regex_by_default_literal_on_request() -> None:
    with mo.sync.open("sim://vocab01?boot=none") as con:
        con.expect("login: ", timeout=30)
        con.send_line("root")
        con.expect("Password: ")
        con.send_line("pw")
        con.expect(r"vocab01:~\$ ")
        con.send_line("echo azb a.b n-42")
        lit = con.expect("a.b", literal=True)
        assert lit.matched == "a.b"
        assert lit.before.endswith("azb ")
        m = con.expect(r"n-(\d+)")
        assert m.captures == ["42"]
        with pytest.raises(mo.InvalidArgument):
            con.expect("(", timeout=1)


def test_one_default_expect_timeout() -> None:
    for fn in (mo.Console.expect, mo.sync.SyncConsole.expect):
        assert "timeout=30.0" in (fn.__text_signature__ or ""), fn.__text_signature__
