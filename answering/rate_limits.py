"""Per-user rate limits of a business: one notice per window, then silence, Gemini not called."""

from __future__ import annotations

import logging

from answering.inbound import FixedReply
from answering.job import Job, Limit, Outcome
from domain.types import MessageState, RateVerdict
from language.replies import Reply
from ops.logs import short_hash
from storage.rate_limits import Window
from storage.store import Store

log = logging.getLogger(__name__)


class RateLimits:
    """The pipeline's rate-limit step, counted in the database for every instance."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def refusal(self, job: Job) -> Outcome | None:
        """Past the business's limit per minute or per day: the outcome to close with, else
        None. `/reset` and `/forget` are never limited."""
        if job.overriding:
            return None
        business, row = job.business, job.row
        verdict = await self._store.rate_limits.check(
            row.conversation_key,
            row.received_at,
            [
                Window("minute", 60, business.rate_limit_per_minute),
                Window("day", 86400, business.rate_limit_per_day),
            ],
        )
        if verdict is RateVerdict.OK:
            return None
        log.info(
            "user %s is over a rate limit (%s)",
            short_hash(row.conversation_key),
            verdict,
            extra=job.log_fields("rate_limit"),
        )
        notice = (
            job.fixed(FixedReply(Reply.RATE_LIMITED)) if verdict is RateVerdict.NOTICE else None
        )
        return Outcome(notice, MessageState.DONE, "rate limited", limit=Limit.RATE)
