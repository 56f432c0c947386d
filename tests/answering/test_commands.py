"""The commands, recognised in one place: RESET_COMMAND, FORGET_COMMAND and, while the console is
on, HANDOFF_COMMAND; exactly the word, case and surrounding spaces ignored, text messages only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import make_settings

from answering.commands import command_of
from domain.types import Command
from storage.inbox import InboxRow

CONSOLE = {"console_password": "an-admin-password-for-tests"}


def row(text: str | None, kind: str = "text") -> InboxRow:
    return InboxRow(
        id=1,
        message_id="wamid.c1",
        conversation_key="106540352242922:16505551234",
        phone_number_id="106540352242922",
        recipient="16505551234",
        kind=kind,
        text=text,
        payload={},
        sent_at=0,
        received_at=0.0,
        attempts=1,
        reply=None,
        parts_sent=0,
    )


@pytest.mark.parametrize(
    ("text", "settings", "command"),
    [
        ("/reset", {}, Command.RESET),
        ("  /RESET \n", {}, Command.RESET),
        ("/forget", {}, Command.FORGET),
        ("/human", CONSOLE, Command.HANDOFF),
        (" /Human ", CONSOLE, Command.HANDOFF),
        ("/human", {}, None),  # the console is off: a question like any other
        ("#Recomeçar", {"reset_command": "#recomeçar"}, Command.RESET),
        ("/reset", {"reset_command": "#recomeçar"}, None),
        ("pessoa", {**CONSOLE, "handoff_command": " Pessoa "}, Command.HANDOFF),
        ("/reset please", {}, None),
        ("please /forget", {}, None),
        ("", CONSOLE, None),
    ],
)
def test_a_command_is_exactly_its_word(
    tmp_path: Path, text: str, settings: dict[str, Any], command: Command | None
) -> None:
    assert command_of(row(text), make_settings(f"sqlite:///{tmp_path}/a.db", **settings)) is command


def test_only_a_text_message_is_a_command(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/a.db", **CONSOLE)
    assert command_of(row("/reset", kind="button"), settings) is None
    assert command_of(row("/human", kind="interactive"), settings) is None
    assert command_of(row(None), settings) is None
