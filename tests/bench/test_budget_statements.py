"""The bench's CPU-per-message section makes again, on copies of the database, the store calls
the real answering side made for each message and the SQL statements they ran: each copy ends
as answering left the database."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

from bench.replay import (
    answer_each,
    bench_messages,
    paced_order,
    replay_calls,
    replay_statements,
)

COUNT = 3  # messages measured, after as many warm-up ones


def contents(database: Path) -> dict[str, list[tuple[object, ...]]]:
    """What answering leaves behind, without the clock's readings."""
    queries = {
        "inbox": "SELECT id, message_id, state, attempts, reply, parts_sent, error FROM inbox",
        "turns": "SELECT id, conversation_key, role, text FROM turns",
        "usage": "SELECT phone_number_id, messages, answers, prompt_tokens, output_tokens "
        "FROM usage_days",
    }
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return {
            name: conn.execute(f"{sql} ORDER BY 1, 2").fetchall() for name, sql in queries.items()
        }


async def test_the_calls_and_statements_made_again_leave_the_database_as_answering_did(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    def copy(name: str) -> Path:
        return Path(shutil.copyfile(migrated_sqlite, tmp_path / name))

    messages = bench_messages(2 * COUNT)
    order = paced_order(COUNT)
    answered = copy("answered.db")
    captured = await answer_each(answered, messages, order)
    await replay_calls(copy("calls.db"), captured, COUNT, rate=1000)
    await replay_statements(copy("statements.db"), captured, COUNT, rate=1000)

    done = contents(answered)
    assert [(row[1], row[2], row[4]) for row in done["inbox"]] == [
        (messages[k].id, "done", f"**Echo:** {messages[k].text}") for k in order
    ]
    assert len(done["turns"]) == 2 * len(messages)
    assert contents(tmp_path / "calls.db") == done
    assert contents(tmp_path / "statements.db") == done
