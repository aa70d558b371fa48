"""mo: console management for Python.

Embedded mode runs a console in this process from its address::

    async with mo.open("sim://web01") as con:
        await con.expect("login: ")
        await con.send_line("root")

Client mode drives a running ``mod`` daemon over its HTTP/WebSocket API::

    client = mo.Client("http://127.0.0.1:7780", token)
    async with client.attach("web01") as con:
        ...

Blocking versions for scripts are in :mod:`mo.sync`.
"""

from __future__ import annotations

import os
from typing import IO, Any, Awaitable, Callable, Generator, Optional, Sequence, Union

from ._errors import (
    AuthError,
    Conflict,
    ConnectError,
    ConsoleClosed,
    InvalidArgument,
    MoError,
    NotFound,
    PermissionDenied,
    ProtocolError,
    TimeoutError,
    Unsupported,
)
from . import _api, _mo
from . import _api as api
from ._request import RawCalls
from ._mo import Console, EventStream, Log, LogRecord, Match, Viewer, __version__

__all__ = [
    "open",
    "Client",
    "api",
    "Console",
    "EventStream",
    "Log",
    "LogRecord",
    "Match",
    "Viewer",
    "MoError",
    "ConnectError",
    "AuthError",
    "TimeoutError",
    "NotFound",
    "PermissionDenied",
    "ProtocolError",
    "Unsupported",
    "InvalidArgument",
    "ConsoleClosed",
    "Conflict",
    "__version__",
]


class Opening:
    """A console being opened: ``await`` it, or use it as ``async with``, which closes it."""

    def __init__(self, start: Callable[[], Awaitable[Console]]) -> None:
        self._start = start
        self._console: Optional[Console] = None

    def __await__(self) -> Generator[Any, None, Console]:
        return self._start().__await__()

    async def __aenter__(self) -> Console:
        self._console = await self._start()
        return self._console

    async def __aexit__(self, *exc: object) -> None:
        if self._console is not None:
            await self._console.close()


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
) -> Opening:
    """Open the console at ``url`` (``sim://NAME``, ``serial:///dev/ttyS0?baud=115200``, ...)
    in this process. ``user`` types (default: the OS user); ``name`` is the device name
    (default: from the address); ``mode`` is attach, spy, force or join; ``replay`` lines of
    recent output come first; ``wait_up`` seconds to wait for the link (None: do not wait);
    ``log_dir`` keeps a record log there. ``scan`` patterns, ``(name, regex)`` or
    ``(name, regex, severity)``, are watched for in the output as the daemon watches its
    consoles: each match (and each link change) is an event, read with ``next_event()``.

    Secrets for ``ssh://`` and ``ipmi://`` consoles (never printed, never in errors):
    ``password`` (SSH password, IPMI user password); ``private_key``, an SSH private key given
    as its OpenSSH/PEM text (holding ``-----BEGIN``) or as the path of the key file, with
    ``key_passphrase`` when it is encrypted; ``bmc_key``, the IPMI BMC key (K_g). Host keys:
    ``known_hosts`` is an OpenSSH ``known_hosts`` file (without it every SSH host key is
    unknown and refused); ``trust_host_key=True`` accepts a key seen for the first time and
    records it there (a changed key is always refused).

    ``logfile`` gets a transcript of every byte read, as pexpect's: a path (appended to) or a
    file object (``sys.stdout.buffer``; a text file gets the bytes decoded as UTF-8); with
    ``logfile_sent=True`` what is sent goes in too. ``log_dir`` output is read with
    :class:`Log`."""
    return Opening(
        lambda: _mo.open(
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
    )


class Client(_api.AsyncCalls, RawCalls, _mo.Client):
    """A client of a running ``mod`` daemon: ``Client("http://127.0.0.1:7780", token)``.

    Every REST operation is a method (docs/sdk.md lists them); answers are the TypedDicts of
    :mod:`mo.api`.

    For an ``https://`` daemon whose certificate no public CA signed, pass ``ca="ca.pem"`` (a
    PEM CA bundle) or ``pin="AB:CD:…"`` (the certificate's SHA-256, printed by ``mod`` at start).
    """

    def attach(
        self, name: str, mode: str = "attach", replay: Optional[int] = None
    ) -> Opening:
        """Attach to console ``name``: ``await`` it, or ``async with`` (closes it)."""
        return Opening(lambda: _mo.Client.attach(self, name, mode, replay))
