"""Usage put in the store the way answering adds it: one `Usage.add` per message closed, on the
UTC day it is asked for."""

from __future__ import annotations

import datetime as dt

from helpers import PHONE_NUMBER_ID

from domain.costs import NOTHING_USED, TokenUse
from storage.usage import Usage


async def add_day(
    usage: Usage,
    days_ago: int,
    business: str = PHONE_NUMBER_ID,
    *,
    messages: int,
    answers: int = 0,
    handoffs: int = 0,
    prompt_tokens: int = 0,
    output_tokens: int = 0,
    tts_tokens: int = 0,
    searches: int = 0,
    embedding_tokens: int = 0,
    cost_usd: float = 0.0,
) -> None:
    """`messages` messages to the business (by number id) `days_ago` days before today (UTC):
    the first `answers` answered, the first `handoffs` handed to a person, the tokens and cost
    all on the first."""
    assert messages >= max(answers, handoffs, 1)
    use = TokenUse(prompt_tokens, output_tokens, 0, tts_tokens, searches, embedding_tokens)
    today = usage.clock
    usage.clock = lambda: today() - dt.timedelta(days=days_ago)
    try:
        for index in range(messages):
            await usage.add(
                business,
                f"{business}:user-{index}",
                answered=index < answers,
                handoff=index < handoffs,
                use=use if index == 0 else NOTHING_USED,
                cost_usd=cost_usd if index == 0 else 0.0,
                per_user=False,
            )
    finally:
        usage.clock = today
