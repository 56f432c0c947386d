"""How far a sent message got: Meta's delivery statuses, their order, and one line's summary.

Meta sends `sent`, `delivered`, `read` (`played` for a voice note played) and `failed` late,
repeated and in any order, so a message's status is compared by stage, never by arrival:

    sent < delivered < failed < read < played

A status moves a message only forward along that line. `failed` stands above `sent` and
`delivered`, so a failure is not undone by a `sent` or `delivered` that arrives after it; it
stands below `read` and `played`, because a message the user read was delivered whatever an
earlier failure said. A message that failed keeps Meta's error code and title.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Status(enum.StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    READ = "read"
    PLAYED = "played"


RANKS: dict[str, int] = {status.value: rank for rank, status in enumerate(Status, start=1)}
NO_STATUS = 0  # sent by the service, no status event yet


def rank_of(status: str) -> int:
    """The stage of a status Meta names; 0 for one this service does not know."""
    return RANKS.get(status, NO_STATUS)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The latest status of a sent message (with Meta's error when it failed)."""

    status: Status
    error_code: int | None = None
    error_title: str | None = None

    @property
    def rank(self) -> int:
        return RANKS[self.status.value]


def of_line(parts: Iterable[Delivery | None]) -> Delivery | None:
    """The status of one transcript line sent as several messages (an answer's parts): a failed
    part's if one failed, else that of the part furthest behind (None while one has none)."""
    parts = list(parts)
    failed = next((p for p in parts if p is not None and p.status is Status.FAILED), None)
    if failed is not None:
        return failed
    if not parts or None in parts:
        return None
    return min((p for p in parts if p is not None), key=lambda part: part.rank)
