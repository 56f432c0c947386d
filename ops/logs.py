"""Logging set-up shared by the web process and the worker processes: one handler, no secrets."""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from typing import Protocol

from pythonjsonlogger.json import JsonFormatter


class LogSettings(Protocol):
    """What logging needs of the settings (config.Settings has it; ops does not import it)."""

    @property
    def log_level(self) -> str: ...

    @property
    def log_format(self) -> str: ...


def short_hash(value: str) -> str:
    """A short, stable stand-in for an id or phone number in logs."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


class RedactQuerySecrets(logging.Filter):
    """Uvicorn's access log prints query strings, and Meta's handshake carries the verify token."""

    _pattern = re.compile(r"(?i)([?&][^=&\s]*(?:token|key|secret|signature)[^=&\s]*=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)  # uvicorn's ANSI copy of the message
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._pattern.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = self._pattern.sub(r"\1***", record.msg)
        return True


def configure_logging(settings: LogSettings) -> None:
    """One handler on the root logger, in the chosen format; uvicorn's loggers feed into it."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactQuerySecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    level = logging.getLevelName(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
        # uvicorn sets its loggers' own levels (INFO unless --log-level), which would let an
        # access line per request through whatever LOG_LEVEL says: the stricter of the two.
        if uvicorn_logger.level < level:
            uvicorn_logger.setLevel(level)
    # Libraries that log what must not be logged, even at DEBUG: httpx prints URLs (media URLs
    # carry signed query strings) and aiosqlite prints every SQL statement with its parameters.
    for name in ("httpx", "httpcore", "aiosqlite", "sqlalchemy.engine", "google_genai"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("httpx2", "httpcore2"):  # the same for the MCP servers' client
        logging.getLogger(name).setLevel(logging.WARNING)
    # The MCP SDK says at INFO and WARNING what actions/mcp_tools.py logs itself, with addresses.
    logging.getLogger("mcp").setLevel(logging.ERROR)
    # Alembic says at INFO how it sets itself up and each step it takes; the store logs the
    # migrations applied in one line instead (below DEBUG).
    alembic_level = logging.NOTSET if settings.log_level == "DEBUG" else logging.WARNING
    logging.getLogger("alembic").setLevel(alembic_level)
