"""A user's burst of messages answered once: what one claim covers, and the typing indicator
shown from each message's arrival until the answer is sent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from answering.inbound import SILENT, FixedReply, interpret
from answering.windows import REPLY_WINDOW_SECONDS
from config import Settings
from domain.types import Command
from ops.logs import short_hash
from storage.bursts import Claimed
from storage.inbox import InboxRow
from webhook.arrivals import Arrival
from webhook.events import Kind
from whatsapp import GraphAPIError, GraphClient

log = logging.getLogger(__name__)

# WhatsApp drops the typing indicator after 25 s; it is shown again before that.
TYPING_RENEW_SECONDS = 20.0
RECEIPTS_KEPT = 4096  # the arrivals this process remembers having marked read


@dataclass(frozen=True, slots=True)
class Burst:
    """What one claim answers: the message the answer goes to (the latest that wants one), the
    ones before it that go to Gemini with it, those closed along without a word (reactions),
    the message to quote, and what is given back to wait for the next claim."""

    anchor: InboxRow
    earlier: tuple[InboxRow, ...] = ()
    silent: tuple[InboxRow, ...] = ()
    quote: str | None = None
    rest: tuple[InboxRow, ...] = ()

    @property
    def closing(self) -> tuple[InboxRow, ...]:
        return (*self.earlier, self.anchor, *self.silent)


def commands_of(settings: Settings) -> list[str]:
    """The words a user sends as a command, for the queries that find bursts due."""
    return sorted(settings.command_words)


def _stops(row: InboxRow, command: Command | None) -> bool:
    """A command, or an answer resumed after a crash, ends the burst: what follows waits."""
    return command is not None or row.reply is not None or row.parts_sent > 0


def burst_of(claimed: Sequence[Claimed], command_of: Callable[[InboxRow], Command | None]) -> Burst:
    """A claim's messages (in the user's order) as the Burst answered now."""
    rows = [c.row for c in claimed]
    end = next((i for i, row in enumerate(rows) if _stops(row, command_of(row))), len(rows) - 1)
    taken, rest = rows[: end + 1], tuple(rows[end + 1 :])
    wanting = [row for row in taken if Kind.of(row.kind) not in SILENT] or taken[-1:]
    anchor = wanting[-1]
    earlier = tuple(row for row in taken if row in wanting and row is not anchor)
    silent = tuple(row for row in taken if row not in wanting)
    quoted = [c.row.message_id for c in claimed[: end + 1] if c.quote and c.row in wanting]
    return Burst(anchor, earlier, silent, quoted[-1] if quoted else None, rest)


def remembered_as(row: InboxRow, max_chars: int) -> str:
    """How the history keeps a message of a burst (as it would keep the message alone)."""
    plan = interpret(Kind.of(row.kind), row.text, row.payload, max_chars)
    return f"[{row.kind}]" if isinstance(plan, FixedReply) else plan.remembered_as


class Typing:
    """Read receipts with the typing indicator: one when each message arrives, and again for
    the latest message every TYPING_RENEW_SECONDS while its answer is prepared."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._shown: dict[str, float] = {}  # message id -> when its indicator was shown

    def shown_at(self, message_id: str) -> float | None:
        return self._shown.get(message_id)

    def shown(self, message_id: str) -> None:
        self._shown[message_id] = self._clock()
        while len(self._shown) > RECEIPTS_KEPT:
            del self._shown[next(iter(self._shown))]

    async def arrived(self, graph: GraphClient, arrival: Arrival) -> None:
        """Blue ticks and the typing indicator as soon as a message is recorded; a failure is
        logged (a token Meta refuses is found when the burst is claimed)."""
        if Kind.of(arrival.kind) in SILENT:
            return
        if arrival.sent_at and time.time() - arrival.sent_at > REPLY_WINDOW_SECONDS:
            return  # kept for the console, never answered
        try:
            await graph.mark_read(arrival.message_id)
        except GraphAPIError as exc:
            log.info("mark_read failed for %s: %s", short_hash(arrival.message_id), exc)
            return
        self.shown(arrival.message_id)

    async def keep(
        self,
        graph: GraphClient,
        message_id: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Show the indicator again before WhatsApp drops it, until cancelled (the answer went
        out); started once the burst's receipt step ran."""
        while True:
            since = self.shown_at(message_id)
            due = (self._clock() if since is None else since) + TYPING_RENEW_SECONDS
            await sleep(max(0.0, due - self._clock()))
            with contextlib.suppress(GraphAPIError):
                await graph.mark_read(message_id)
            self.shown(message_id)
