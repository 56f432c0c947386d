"""The settings at start-up: the environment and `.env`, then the files and folders they name,
checked before any work; or one message that says what to fix, and exit status 1."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from config import Settings
from config.problems import describe_problems, start_up_message
from documents.library import has_files
from domain.businesses import read_tenants_file
from domain.tools_file import NO_TOOLS, read_tools_file
from ops.logs import configure_logging


def load_settings(**overrides: Any) -> Settings:
    """The checked settings, with logging set up by them; or the process stops with one
    readable message and exit status 1. Warnings given while reading them (a token pasted with
    `Bearer `) are logged once logging is set up."""
    with held_warnings() as held:
        try:
            settings = checked(Settings(**overrides))
        except ValidationError as error:
            stop(describe_problems(error), held)
        except ValueError as error:
            stop([f"  {error}"], held)
    configure_logging(settings)
    for record in held:
        logging.getLogger(record.name).handle(record)
    return settings


def checked(settings: Settings) -> Settings:
    """The settings once the files they name are read and the folders probed; ValueError, its
    message naming the setting and never a secret, for what stops start-up."""
    if not settings.files_read:
        settings = read_files(settings)
    refuse_web_search_with_documents(settings)
    return settings


def read_files(settings: Settings) -> Settings:
    """SYSTEM_PROMPT_FILE's prompt, TENANTS_FILE's businesses with their tokens (and their
    tools files), and TOOLS_FILE's tools for the business of PHONE_NUMBER_ID."""
    if settings.system_prompt_file is not None:
        settings = settings.with_prompt(read_prompt(settings.system_prompt_file))
    tenants = []
    if settings.tenants_file is not None:
        tenants = read_tenants_file(settings.tenants_file, settings.default_business())
    tools = NO_TOOLS
    if settings.tools_file is not None:
        if settings.phone_number_id is None:
            raise ValueError(
                "TOOLS_FILE is the tools of the business of PHONE_NUMBER_ID, which is not set: "
                "with TENANTS_FILE, give each business its own tools_file"
            )
        tools = read_tools_file(settings.tools_file)
    return settings.with_businesses(tenants, tools)


def read_prompt(path: Path) -> str:
    try:
        prompt = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"SYSTEM_PROMPT_FILE cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ValueError("SYSTEM_PROMPT_FILE is not UTF-8 text") from None
    if not prompt:
        raise ValueError("SYSTEM_PROMPT_FILE is empty")
    return prompt


def refuse_web_search_with_documents(settings: Settings) -> None:
    """Gemini cannot search the web and a File Search store in one request (400)."""
    if not settings.web_search:
        return
    with_files = [b.name for b in settings.businesses if has_files(b.knowledge_dir)]
    if with_files:
        raise ValueError(
            "WEB_SEARCH=true cannot be combined with documents: Gemini does not yet "
            "search the web and a File Search store in one request, and "
            f"{', '.join(with_files)} has documents in its KNOWLEDGE_DIR. Set "
            "WEB_SEARCH=false, or empty the folder"
        )


@contextlib.contextmanager
def held_warnings() -> Iterator[list[logging.LogRecord]]:
    """Log records of WARNING and above, held back while the settings that say how to log
    them are read (nothing else is logged meanwhile)."""
    held: list[logging.LogRecord] = []

    class Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            held.append(record)

    root = logging.getLogger()
    handlers = root.handlers[:]
    root.handlers[:] = [Hold(logging.WARNING)]
    try:
        yield held
    finally:
        root.handlers[:] = handlers


def stop(problems: list[str], held: list[logging.LogRecord]) -> NoReturn:
    for record in held:
        print(f"{record.levelname}: {record.getMessage()}", file=sys.stderr)
    print(start_up_message(problems), file=sys.stderr)
    raise SystemExit(1) from None
