"""Run commands Netmiko-style: ``send_command`` returns exactly a command's output (the prompt
learnt from the console, ``--More--`` pages answered), then read the record log with ``mo.Log``.

    python examples/python/send_command.py                          # a sim with a pager
    python examples/python/send_command.py sim://web01 "uname -a" "seq 30"
"""

from __future__ import annotations

import sys
import tempfile

import mo
import mo.sync


def log_in(con: mo.sync.SyncConsole) -> None:
    """Get to a shell prompt (the sim takes any user; its password here is ``secret``)."""
    con.send_line("")
    if con.expect([r"login: $", r"[$#] $"], timeout=60).index == 0:
        con.send_line("root")
        con.expect("Password: ")
        con.send_line("secret")
        con.expect(r"[$#] $")


def main(url: str, commands: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="mo-example-") as logs:
        with mo.sync.open(url, log_dir=logs) as con:
            log_in(con)
            print(f"prompt: {con.find_prompt()!r}")
            for command in commands:
                output = con.send_command(command, timeout=30)
                print(f"--- {command} ({len(output.splitlines())} lines)")
                print(output)
        # The record log of the session, read without the CLI.
        log = mo.Log(logs)
        records = list(log.records())
        typed = [r.text.strip() for r in records if r.kind == "input"]
        ran = [c for c in typed if c in commands]
        print(f"--- log: {len(records)} records, the commands typed: {ran}")
        print(f"--- log: verify ok={log.verify()['ok']}")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "sim://web01?boot=fast&pager=10"
    commands = sys.argv[2:] or ["uname -a", "seq 25"]
    try:
        main(target, commands)
    except mo.MoError as e:
        sys.exit(f"send_command: {e}")
