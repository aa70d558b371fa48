"""The exception hierarchy of mo: every error mo raises is a :class:`MoError`.

The Rust core's error kinds map one to one onto these classes (see bindings/python/src/errors.rs).
"""

import builtins

__all__ = [
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
]


class MoError(Exception):
    """Base class of every mo error."""


class ConnectError(MoError):
    """The device, link or daemon could not be reached, or the console is down."""


class AuthError(MoError):
    """Credentials (password, key, token) or a host key were refused."""


class TimeoutError(MoError, builtins.TimeoutError):
    """Nothing matched, or a peer did not answer, in time. Also a builtin ``TimeoutError``."""


class NotFound(MoError):
    """No such device, session, event or file."""


class PermissionDenied(MoError):
    """Not allowed: typing while spying, a policy denial, a file permission."""


class ProtocolError(MoError):
    """A peer sent something mo cannot work with, or a log file is damaged."""


class Unsupported(MoError):
    """The link or device does not support the operation (break, window size, ...)."""


class InvalidArgument(MoError, ValueError):
    """A malformed address, pattern, mode or duration. Also a ``ValueError``."""


class ConsoleClosed(MoError):
    """The console has stopped or the attachment has ended."""


class Conflict(MoError):
    """The request conflicts with the current state (e.g. the device already exists)."""
