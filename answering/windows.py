"""Meta's time limits the service keeps to: the 24-hour reply window, the 7-day redelivery."""

from __future__ import annotations

import time

from answering.job import Job, Outcome
from domain.types import MessageState, Role, Turn
from storage.inbox import InboxRow

# WhatsApp allows free-form replies for 24 hours after the user's message; keep a safety margin.
REPLY_WINDOW_SECONDS = 24 * 3600 - 120
# Meta redelivers for up to 7 days: inbox rows are kept a day longer so dedup holds throughout.
INBOX_RETENTION_SECONDS = 8 * 24 * 3600


def written_at(row: InboxRow) -> float:
    """When the user wrote the message, which starts WhatsApp's 24-hour reply window.

    Meta's timestamp, unless it is missing or older than Meta's 7-day redelivery horizon
    (then it cannot be a real delivery time, and the time this service received it is used).
    """
    if row.sent_at and row.received_at - row.sent_at < INBOX_RETENTION_SECONDS:
        return min(float(row.sent_at), row.received_at)
    return row.received_at


def outside_reply_window(row: InboxRow, now: float) -> bool:
    """Too late for a free-form reply: only a template could reach the user now."""
    return now - written_at(row) > REPLY_WINDOW_SECONDS


async def outside_the_window(job: Job) -> Outcome | None:
    """The pipeline's step for a message too old to answer: its history keeps it (the console
    shows it), and it closes as expired, unanswered."""
    if not outside_reply_window(job.row, time.time()):
        return None
    turns = (Turn(Role.USER, job.remembered_as),)
    return Outcome(None, MessageState.EXPIRED, "outside the 24-hour reply window", turns)
