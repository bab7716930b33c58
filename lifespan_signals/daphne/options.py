"""Command-line options shared by ``runasgi`` and ``lifespan-daphne``: timeouts in seconds,
negative values that reach their option, and a port probe in runserver's words."""

from __future__ import annotations

import errno
import re
import socket
import sys
import threading
from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = [
    "TIMEOUT_OPTIONS",
    "add_lifespan_argument",
    "add_timeout_arguments",
    "join_negative_values",
    "parse_negative_values",
    "port_problem",
    "seconds",
]

TIMEOUT_OPTIONS = ("--http-timeout", "--websocket-handshake-timeout", "--graceful-timeout")
_Parser = TypeVar("_Parser", bound=ArgumentParser)

# runserver's words for the errors of bind().
_BIND_ERRORS = {
    errno.EACCES: "You don't have permission to access that port.",
    errno.EADDRINUSE: "That port is already in use.",
    errno.EADDRNOTAVAIL: "That IP address can't be assigned to.",
}
_NEGATIVE = re.compile(r"-(\d|\.\d|inf|nan)", re.IGNORECASE)


def seconds(value: str) -> float | None:
    """An ``argparse`` type: a number of seconds, 0 or more, such as ``1.5``.

    ``inf``, or more than the platform can wait (``1e12``), means no limit: None.
    """
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number >= 0:  # also rejects nan
        raise ArgumentTypeError(f"should be a number of seconds, 0 or more, not {value!r}")
    return None if number > threading.TIMEOUT_MAX else number


def add_timeout_arguments(parser: ArgumentParser) -> None:
    """The server's timeouts, in seconds (see :func:`seconds`), as options of ``parser``."""
    parser.add_argument(
        "--http-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="Seconds a request may take before Daphne answers 503 (default, 0 or inf: no limit).",
    )
    parser.add_argument(
        "--websocket-handshake-timeout",
        type=seconds,
        default=5.0,
        metavar="SECONDS",
        help="Seconds a WebSocket handshake may take (default: 5; 0 or inf: no limit).",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=seconds,
        default=5.0,
        metavar="SECONDS",
        help="On stop or reload, seconds in-flight requests and closed WebSockets' consumers "
        "get to finish before lifespan shutdown runs (default: 5; inf: no limit).",
    )


def add_lifespan_argument(parser: ArgumentParser) -> None:
    """``--lifespan auto|on|off``, with uvicorn's meanings, as an option of ``parser``."""
    parser.add_argument(
        "--lifespan",
        choices=("auto", "on", "off"),
        default="auto",
        help="auto (default): serve an application that does not speak the ASGI lifespan "
        "without it, with a warning; on: refuse it; off: never run the lifespan.",
    )


def parse_negative_values(parser: _Parser, options: Sequence[str]) -> _Parser:
    """Make ``parser`` read ``--option -1`` as ``--option=-1``: see :func:`join_negative_values`."""
    parse_args = parser.parse_args

    def parse(args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        args = sys.argv[1:] if args is None else args
        return parse_args(join_negative_values(args, options), namespace)

    parser.parse_args = parse  # type: ignore[assignment]
    return parser


def join_negative_values(args: Sequence[str], options: Sequence[str]) -> list[str]:
    """Write ``--option -1`` as ``--option=-1`` for the given options.

    A parser with an option that looks like a negative number (runserver's ``-6``) takes ``-1``
    for an option and says only "expected one argument"; joined, the value reaches the option's
    type, which says what is wrong with it.
    """
    joined: list[str] = []
    for arg in args:
        if joined and joined[-1] in options and _NEGATIVE.match(arg):
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


def port_problem(host: str, port: int, *, ipv6: bool = False) -> str | None:
    """Why a server could not listen on ``host:port``, in runserver's words; None if it can.

    Binds (as Twisted does, with ``SO_REUSEADDR``) and lets go at once, so that a command can
    refuse before lifespan startup opens anything.
    """
    if not 0 <= port <= 65535:
        return f"Port {port} is out of range: use a port from 0 to 65535."
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return _BIND_ERRORS.get(exc.errno or 0, str(exc))
    return None
