"""ops/logs.py: one handler, uvicorn's loggers fed into it at LOG_LEVEL."""

from __future__ import annotations

import logging

import pytest
from helpers import make_settings

from ops.logs import configure_logging


@pytest.mark.parametrize(("log_level", "access_lines"), [("WARNING", False), ("INFO", True)])
def test_uvicorns_access_log_follows_log_level(
    log_level: str, access_lines: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn sets its access logger to INFO itself; LOG_LEVEL=WARNING still means no line
    per request (one per webhook was a twentieth of the web process's CPU)."""
    access = logging.getLogger("uvicorn.access")
    monkeypatch.setattr(access, "level", logging.INFO)  # as uvicorn's own configuration leaves it
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(logging.getLogger(), "level", logging.WARNING)
    configure_logging(make_settings("sqlite:///unused.db", log_level=log_level))
    assert access.isEnabledFor(logging.INFO) is access_lines
    assert access.isEnabledFor(logging.WARNING)
