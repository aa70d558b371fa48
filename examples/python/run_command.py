"""Log in to a device, run a command and capture its output with expect (blocking API).

    python examples/python/run_command.py sim://web01 "uname -a"
"""

from __future__ import annotations

import sys

import mo
import mo.sync


def run(url: str, command: str) -> str:
    with mo.sync.open(url) as con:
        con.send_line("")
        if con.expect([r"login: ", r":~\$ "], timeout=30).index == 0:
            con.send_line("root")
            con.expect("Password: ")
            con.send_line("secret")
            con.expect(r":~\$ ")
        con.send_line(command)
        con.expect(r"\n")  # the echoed command line
        return con.expect(r"(?m)^[\w-]+:~\$ ", timeout=10).before


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "sim://web01?boot=fast"
    command = sys.argv[2] if len(sys.argv) > 2 else "uname -a"
    try:
        print(run(url, command), end="")
    except mo.TimeoutError as e:
        sys.exit(f"run_command: {e}")
