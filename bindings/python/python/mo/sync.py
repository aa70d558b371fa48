"""Blocking API for scripts: the same calls as :mod:`mo` without ``await``.

    with mo.sync.open("sim://web01") as con:
        con.expect("login: ")
        con.send_line("root")
"""

from __future__ import annotations

import os
from typing import IO, Optional, Sequence, Union

from ._api import SyncCalls
from ._mo import EventStream, SyncClient, SyncConsole, open_sync
from ._request import RawCalls


class Client(SyncCalls, RawCalls, SyncClient):
    """A blocking client of a running ``mod`` daemon: the calls of :class:`mo.Client` without
    ``await`` (``ca`` and ``pin`` as there)."""


__all__ = ["open", "Client", "SyncClient", "SyncConsole", "EventStream"]


def open(
    url: str,
    user: Optional[str] = None,
    *,
    name: Optional[str] = None,
    mode: str = "attach",
    replay: Optional[int] = None,
    wait_up: Optional[float] = 30.0,
    log_dir: Optional[str] = None,
    scan: Optional[Sequence[Union[tuple[str, str], tuple[str, str, str]]]] = None,
    password: Optional[str] = None,
    private_key: Optional[str] = None,
    key_passphrase: Optional[str] = None,
    known_hosts: Optional[Union[str, os.PathLike[str]]] = None,
    trust_host_key: bool = False,
    bmc_key: Optional[str] = None,
    logfile: Optional[Union[str, os.PathLike[str], IO[bytes], IO[str]]] = None,
    logfile_sent: bool = False,
) -> SyncConsole:
    """Open the console at ``url`` in this process; see :func:`mo.open`. Use it as ``with``."""
    return open_sync(
        url,
        user=user,
        name=name,
        mode=mode,
        replay=replay,
        wait_up=wait_up,
        log_dir=log_dir,
        scan=scan,
        password=password,
        private_key=private_key,
        key_passphrase=key_passphrase,
        known_hosts=known_hosts,
        trust_host_key=trust_host_key,
        bmc_key=bmc_key,
        logfile=logfile,
        logfile_sent=logfile_sent,
    )
