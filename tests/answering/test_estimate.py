"""An answer's worst case, as held against the daily budgets: pinned with literal figures."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from helpers import PHONE_NUMBER_ID, make_settings

from answering.estimate import worst_case
from answering.inbound import Question
from answering.media import MediaRef
from domain.costs import TokenUse
from domain.tools import HttpTool
from webhook.events import Kind

SQLITE = "sqlite:///unused.db"
HELLO = Question("hello", "hello")


def estimate(question: Question = HELLO, *, spoken: bool = False, **overrides: Any) -> TokenUse:
    settings = make_settings(SQLITE, **overrides)
    business = settings.businesses.get(PHONE_NUMBER_ID)
    assert business is not None
    return worst_case(business, settings, question, spoken=spoken).use


def test_one_request_without_functions() -> None:
    # The system prompt (34 characters), 3,000 for what answering adds, 16,000 of history and
    # the message (5): 19,039 characters at 3 a token, and 8,000 for what retrieval adds.
    use = estimate(interactive_replies="off")
    assert use == TokenUse(prompt=6_347 + 8_000, output=4_096)
    settings = make_settings(SQLITE, interactive_replies="off")
    business = settings.businesses.get(PHONE_NUMBER_ID)
    assert business is not None
    cost = worst_case(business, settings, HELLO, spoken=False).cost_usd
    assert cost == pytest.approx(14_347 * 0.50 / 1e6 + 4_096 * 3.00 / 1e6)  # about $0.019


def test_every_round_of_function_calling_carries_the_last_ones() -> None:
    # With choices to offer: up to 5 calls, one a round, then a last round: 6 requests, each
    # the first one's 14,347 tokens plus, per round before it, 4,096 written and 5 short
    # error responses (200 characters: 334 tokens).
    use = estimate(interactive_replies="on")
    growth = 4_096 + 334
    assert use == TokenUse(prompt=6 * 14_347 + 15 * growth, output=6 * 4_096)


def test_the_business_tools_responses_count_at_their_largest() -> None:
    tool = HttpTool(name="stock", description="Stock of an item", method="GET", url="https://x")
    settings = make_settings(SQLITE, interactive_replies="off")
    business = settings.businesses.get(PHONE_NUMBER_ID)
    assert business is not None
    with_tools = replace(business, tools=(tool,))
    use = worst_case(with_tools, settings, HELLO, spoken=False).use
    declared = len("stock") + len("Stock of an item") + len(str(tool.parameters))
    first = -(-(19_039 + declared) // 3) + 8_000
    growth = 4_096 + 13_654  # 5 responses of 8 KiB at most
    assert use == TokenUse(prompt=6 * first + 15 * growth, output=6 * 4_096)


def test_a_voice_answer_adds_the_longest_speech() -> None:
    spoken = estimate(spoken=True, interactive_replies="off")
    # 900 characters read (300 tokens) and at most 3,600 audio tokens.
    assert spoken == estimate(interactive_replies="off") + TokenUse(prompt=300, tts=3_600)


@pytest.mark.parametrize(
    ("kind", "tokens"),
    [
        pytest.param(Kind.IMAGE, 1_120, id="photo"),
        pytest.param(Kind.AUDIO, 16 * 1024 * 1024 // 64, id="audio-16-mib"),
        pytest.param(Kind.VIDEO, 16 * 1024 * 1024 // 128, id="video-16-mib"),
        pytest.param(Kind.DOCUMENT, 1_048_576 - 14_347, id="document-up-to-the-context"),
    ],
)
def test_media_count_at_their_kinds_largest(kind: Kind, tokens: int) -> None:
    media = MediaRef(kind, "1", "application/pdf", "00", None, None, False)
    with_media = Question("hello", "hello", media)
    assert estimate(with_media, interactive_replies="off").prompt == 14_347 + tokens


def test_thinking_priced_above_output_is_held_at_its_price() -> None:
    use = estimate(interactive_replies="off", price_thinking_per_million_usd=5.0)
    assert (use.output, use.thinking) == (0, 4_096)


def test_web_search_holds_four_searches_a_request() -> None:
    assert estimate(interactive_replies="off", web_search=True).searches == 4
