"""Where uvicorn is about to listen, read before start-up work, and whether it can listen there."""

from __future__ import annotations

import errno
import os
import socket
import sys
from dataclasses import dataclass

WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 - names of "every interface", compared only


@dataclass(frozen=True, slots=True)
class Listening:
    """The host and port uvicorn listens on; `binds`: it binds them itself after the app's
    start-up (not so with --reload or --workers, whose parent process bound them already)."""

    host: str
    port: int
    binds: bool = True

    @property
    def local_url(self) -> str:
        """The address a browser on this machine opens (every interface: localhost)."""
        host = "localhost" if self.host in WILDCARDS else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"


def uvicorn_listening() -> Listening | None:
    """Where `uvicorn main:app` (its command line and UVICORN_* variables) will listen; None
    under another server or `uvicorn.run` (tests), or on a file descriptor or a Unix socket.

    Read from the command's click context, which is current while uvicorn imports the app and
    runs its lifespan: uvicorn keeps no handle on its settings that an app could read then.
    """
    click = sys.modules.get("click")
    context = click.get_current_context(silent=True) if click is not None else None
    if context is None or getattr(context.command.callback, "__module__", "") != "uvicorn.main":
        return None
    params = context.params
    if params.get("fd") is not None or params.get("uds"):
        return None
    workers = params.get("workers") or _web_concurrency()
    return Listening(
        str(params.get("host") or ""),
        int(params.get("port") or 0),
        binds=not (params.get("reload") or workers > 1),
    )


def _web_concurrency() -> int:
    """uvicorn's default number of worker processes."""
    try:
        return int(os.environ.get("WEB_CONCURRENCY") or 1)
    except ValueError:
        return 1


def bind_problem(host: str, port: int) -> OSError | None:
    """Why uvicorn will not be able to listen on host:port (the port in use, most often), or
    None. Bound and closed again the way asyncio's create_server binds: every address the host
    resolves to, SO_REUSEADDR on POSIX (a port left in TIME_WAIT is free), IPv6 only on IPv6."""
    if port == 0:
        return None
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return None  # uvicorn says so itself
    for family, kind, proto, _, address in dict.fromkeys(addresses):
        with socket.socket(family, kind, proto) as probe:
            if sys.platform != "win32":
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                return exc
    return None


def cannot_listen_message(listening: Listening, problem: OSError) -> str:
    """What a person reads: the port, why, and the three ways of choosing another."""
    where = f"port {listening.port}" + (
        f" on {listening.host}" if listening.host not in WILDCARDS else ""
    )
    if problem.errno == errno.EADDRINUSE:
        reason = (
            f"{where} is already in use (another copy of this service, or another program, "
            "listens on it)"
        )
    else:
        reason = f"cannot listen on {where} ({problem.strerror or type(problem).__name__})"
    other = listening.port + 1 if 0 < listening.port < 65535 else 8001
    return (
        f"Cannot start: {reason}. Stop that program, or choose another port: "
        f"`uvicorn main:app --port {other}`, or `make run PORT={other}`; on Render the start "
        "command must listen on the port Render gives in PORT (`--port $PORT`)."
    )
