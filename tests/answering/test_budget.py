"""Daily caps on Gemini spending: the deployment's budget, a business's, one user's tokens; kept
in the database for every instance, reset by the UTC day, and each logged once when it bites."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import Harness, conversation, make_settings, running_app, text_payload
from prometheus_client.parser import text_string_to_metric_families
from respx_upstreams import FakeUpstreams, gemini_answer
from sqlalchemy import select

from config import Settings
from domain.types import ConversationState, MessageState
from language.replies import Reply, reply_text
from storage.schema import conversations, user_days

USER, OTHER, BRAZILIAN = "16505551234", "16505559876", "5511987654321"
# Prices that make the sums easy: one answer of 1,000 prompt and 100 output tokens costs
# 1000 * $2/M + 100 * $10/M = $0.003.
PRICES: dict[str, Any] = {
    "price_input_per_million_usd": 2.0,
    "price_output_per_million_usd": 10.0,
    "price_thinking_per_million_usd": 10.0,
    "price_tts_per_million_usd": 20.0,
    "price_per_search_usd": 0.01,
}
BUDGET_EN = "Sorry, I can't answer any more messages today. Please try again tomorrow."
HANDOFF_EN = (
    "I've asked a person from our team to join. They'll answer you here as soon as they can."
)


def priced(database_url: str, **overrides: Any) -> Settings:
    return make_settings(database_url, **{**PRICES, **overrides})


def costly(text: str) -> httpx.Response:
    """A $0.003 answer at PRICES."""
    return gemini_answer(text, prompt_tokens=1000, output_tokens=100)


async def say(app: Harness, body: str, message_id: str, wa_id: str = USER) -> None:
    response = await app.post(text_payload(body, message_id=message_id, wa_id=wa_id))
    assert response.status_code == 200
    await app.settle_all()


def bodies(fakes: FakeUpstreams) -> list[str]:
    return [m["text"]["body"] for m in fakes.sent()]


def budget_warnings(output: str) -> list[str]:
    """The budget's WARNING lines in what the service logged (to stderr)."""
    return [line for line in output.splitlines() if "WARNING answering.budget:" in line]


async def metric(app: Harness, name: str, **labels: str) -> float:
    text = (await app.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def test_the_daily_budget_stops_gemini_and_says_so_in_the_users_language(
    database_url: str, fakes: FakeUpstreams, capsys: pytest.CaptureFixture[str]
) -> None:
    fakes.gemini_queue.extend([costly("First."), costly("Second.")])
    async with running_app(priced(database_url, daily_budget_usd=0.005), fakes) as app:
        await say(app, "one", "wamid.b1")  # $0.003 spent
        await say(app, "two", "wamid.b2")  # $0.006: the budget is reached
        await say(app, "three", "wamid.b3")
        await say(app, "quatro", "wamid.b4", wa_id=BRAZILIAN)
        states = [await app.services.store.inbox.state_of(f"wamid.b{i}") for i in (3, 4)]
        capped = await metric(app, "assistant_messages_total", outcome="budget")

    assert len(fakes.gemini_calls) == 2
    assert bodies(fakes) == [
        "First.",
        "Second.",
        BUDGET_EN,
        reply_text(Reply.BUDGET, "pt-BR"),
    ]
    assert reply_text(Reply.BUDGET, "pt-BR") != BUDGET_EN
    assert states == [MessageState.DONE, MessageState.DONE]
    assert capped == 2
    output = capsys.readouterr().err
    [warning] = budget_warnings(output)  # once, not once per message
    assert "DAILY_BUDGET_USD ($0.005)" in warning and "tomorrow" in warning
    assert USER not in output and BRAZILIAN not in output


async def test_with_the_console_on_a_capped_conversation_waits_for_a_person(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = priced(
        database_url, daily_budget_usd=0.002, console_password="an-admin-password-for-tests"
    )
    fakes.gemini_queue.append(costly("Answered."))
    async with running_app(settings, fakes) as app:
        await say(app, "one", "wamid.c1")  # $0.003: over the budget
        await say(app, "two", "wamid.c2")
        await say(app, "three", "wamid.c3")  # waits for the person, unanswered
        async with app.services.store.engine.connect() as conn:
            state = await conn.scalar(
                select(conversations.c.state).where(
                    conversations.c.conversation_key == conversation(USER)
                )
            )
    assert len(fakes.gemini_calls) == 1
    assert bodies(fakes) == ["Answered.", HANDOFF_EN]
    assert state == ConversationState.WAITING.value


async def test_one_users_daily_tokens_are_capped_and_others_still_answered(
    database_url: str, fakes: FakeUpstreams, capsys: pytest.CaptureFixture[str]
) -> None:
    fakes.gemini_queue.extend([costly("A1"), costly("A2"), costly("B1")])
    async with running_app(priced(database_url, user_daily_token_limit=1500), fakes) as app:
        await say(app, "a1", "wamid.u1")  # 1,100 tokens
        await say(app, "a2", "wamid.u2")  # 2,200: over 1,500
        await say(app, "a3", "wamid.u3")
        await say(app, "b1", "wamid.u4", wa_id=OTHER)
        await say(app, "a4", "wamid.u5")
        async with app.services.store.engine.connect() as conn:
            kept = (await conn.execute(select(user_days))).all()

    assert bodies(fakes) == ["A1", "A2", BUDGET_EN, "B1", BUDGET_EN]
    assert len(fakes.gemini_calls) == 3
    [warning] = budget_warnings(capsys.readouterr().err)
    assert "USER_DAILY_TOKEN_LIMIT" in warning
    assert sorted(row.tokens for row in kept) == [1100, 2200]
    assert not any(USER in str(row) or OTHER in str(row) for row in kept)  # hashed, not numbers


TENANTS = """
[[tenants]]
name = "Padaria Central"
phone_number_id = "111111111111111"
whatsapp_token_env = "TEST_TOKEN_PADARIA"
daily_budget_usd = 0.002

[[tenants]]
name = "Oficina do Zé"
phone_number_id = "222222222222222"
whatsapp_token_env = "TEST_TOKEN_OFICINA"
"""


def to(number_id: str, body: str, message_id: str) -> Any:
    payload = copy.deepcopy(text_payload(body, message_id=message_id))
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = number_id
    return payload


async def test_a_business_budget_caps_that_business_only(
    database_url: str,
    fakes: FakeUpstreams,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TEST_TOKEN_PADARIA", "tok-padaria-41f2")
    monkeypatch.setenv("TEST_TOKEN_OFICINA", "tok-oficina-9c3e")
    path = tmp_path / "tenants.toml"
    path.write_text(TENANTS, encoding="utf-8")
    settings = priced(database_url, tenants_file=path, phone_number_id=None, whatsapp_token=None)
    fakes.gemini_queue.extend([costly("Bakery."), costly("Garage 1."), costly("Garage 2.")])
    async with running_app(settings, fakes) as app:
        for number_id, message_id in [
            ("111111111111111", "wamid.p1"),  # $0.003: over the bakery's $0.002
            ("111111111111111", "wamid.p2"),
            ("222222222222222", "wamid.o1"),
            ("222222222222222", "wamid.o2"),
        ]:
            await app.post(to(number_id, "hello", message_id))
            await app.settle_all()
    assert bodies(fakes) == ["Bakery.", BUDGET_EN, "Garage 1.", "Garage 2."]
    [warning] = budget_warnings(capsys.readouterr().err)
    assert "'Padaria Central'" in warning


async def test_two_instances_share_the_days_spend(
    postgres_database: str, fakes: FakeUpstreams, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = priced(postgres_database, daily_budget_usd=0.005)
    fakes.gemini_queue.extend([costly("From the first."), costly("Also the first.")])
    async with running_app(settings, fakes) as first, running_app(settings, fakes) as second:
        await say(first, "one", "wamid.t1")
        await say(first, "two", "wamid.t2")  # $0.006, spent by the first instance
        await say(second, "three", "wamid.t3")  # the second one knows
        await say(first, "four", "wamid.t4")
        await say(second, "five", "wamid.t5")
    assert len(fakes.gemini_calls) == 2
    assert bodies(fakes) == ["From the first.", "Also the first.", *[BUDGET_EN] * 3]
    assert (
        len(budget_warnings(capsys.readouterr().err)) == 1
    )  # one notice for the deployment, not per instance


async def test_the_next_utc_day_starts_with_nothing_spent(
    database_url: str, fakes: FakeUpstreams, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = priced(database_url, daily_budget_usd=0.002, user_daily_token_limit=1000)
    fakes.gemini_queue.extend([costly("Today."), costly("Tomorrow.")])
    async with running_app(settings, fakes) as app:
        usage = app.services.store.usage
        today = dt.datetime(2026, 12, 2, 23, 59, 30, tzinfo=dt.UTC)
        usage.clock = lambda: today
        await say(app, "one", "wamid.d1")
        await say(app, "two", "wamid.d2")
        usage.clock = lambda: today + dt.timedelta(seconds=31)  # 00:00:01 UTC, the 3rd
        await say(app, "three", "wamid.d3")
        await say(app, "four", "wamid.d4")
    assert bodies(fakes) == ["Today.", BUDGET_EN, "Tomorrow.", BUDGET_EN]
    assert len(budget_warnings(capsys.readouterr().err)) == 2  # once on each day


async def test_the_estimated_cost_counter_adds_tokens_thinking_searches_and_speech(
    database_url: str, fakes: FakeUpstreams
) -> None:
    searched = costly("From the web.")
    body = searched.json()
    body["usageMetadata"].update({"thoughtsTokenCount": 200, "toolUsePromptTokenCount": 500})
    body["candidates"][0]["groundingMetadata"] = {"webSearchQueries": ["bakery hours", "menu"]}
    fakes.gemini_queue.extend([costly("Plain."), httpx.Response(200, json=body)])
    async with running_app(priced(database_url), fakes) as app:
        assert await metric(app, "assistant_estimated_cost_usd_total") == 0
        await say(app, "one", "wamid.m1")
        after_one = await metric(app, "assistant_estimated_cost_usd_total", business="default")
        await say(app, "two", "wamid.m2")
        after_two = await metric(app, "assistant_estimated_cost_usd_total", business="default")
    assert after_one == pytest.approx(0.003)
    # 1,500 prompt tokens (tool use included) at $2/M, 100 output and 200 thinking at $10/M,
    # two searches at $0.01
    assert after_two - after_one == pytest.approx(0.003 + 0.001 + 0.002 + 0.02)


async def test_speaking_an_answer_is_counted_at_the_text_to_speech_price(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.gemini_queue.append(costly("Spoken."))
    async with running_app(priced(database_url, voice_replies="always"), fakes) as app:
        await say(app, "say it", "wamid.v1")
        cost = await metric(app, "assistant_estimated_cost_usd_total", business="default")
    assert len(fakes.voice_notes()) == 1
    # The answer, then the speech: 30 text tokens at $2/M and 200 audio tokens at $20/M.
    assert cost == pytest.approx(0.003 + 0.00006 + 0.004)


async def test_each_day_keeps_messages_answers_handoffs_tokens_and_cost(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = priced(database_url, console_password="an-admin-password-for-tests")
    fakes.gemini_queue.extend([costly("One."), costly("Two.")])
    async with running_app(settings, fakes) as app:
        await say(app, "one", "wamid.s1")
        await say(app, "two", "wamid.s2")
        await say(app, "/human", "wamid.s3")  # handed over: no Gemini
        await say(app, "still there?", "wamid.s4")  # held for the person
        store = app.services.store
        [today] = await store.usage.days(None, store.usage.today())
    assert (today.messages, today.answers, today.handoffs) == (4, 2, 1)
    assert (today.use.prompt, today.use.output, today.use.tts) == (2000, 200, 0)
    assert today.cost_usd == pytest.approx(0.006)


# Exactly on each cap: the first answer spends 5,000 prompt tokens at $10 per million, $0.05,
# which is the budget, or 4,000, $0.04, a cent under it; the second message then finds the
# cap reached (Gemini not asked) or not yet.
ON_THE_BUDGET = pytest.mark.parametrize(
    ("prompt_tokens", "spent", "second_reply"),
    [
        pytest.param(5000, 0.05, BUDGET_EN, id="spent-equals-the-budget"),
        pytest.param(4000, 0.04, "Second.", id="a-cent-under"),
    ],
)


def spending(prompt_tokens: int) -> list[httpx.Response]:
    return [gemini_answer("First.", prompt_tokens, 0), gemini_answer("Second.", 10, 0)]


@ON_THE_BUDGET
async def test_the_daily_budget_is_reached_when_the_spend_equals_it(
    database_url: str, fakes: FakeUpstreams, prompt_tokens: int, spent: float, second_reply: str
) -> None:
    settings = priced(database_url, price_input_per_million_usd=10.0, daily_budget_usd=0.05)
    fakes.gemini_queue.extend(spending(prompt_tokens))
    async with running_app(settings, fakes) as app:
        await say(app, "one", "wamid.x1")
        spent_today = await app.services.store.usage.spent_today()
        await say(app, "two", "wamid.x2")
    assert spent_today == spent
    assert bodies(fakes) == ["First.", second_reply]
    assert len(fakes.gemini_calls) == (1 if second_reply == BUDGET_EN else 2)


@ON_THE_BUDGET
async def test_a_business_budget_is_reached_when_its_spend_equals_it(
    database_url: str,
    fakes: FakeUpstreams,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prompt_tokens: int,
    spent: float,
    second_reply: str,
) -> None:
    monkeypatch.setenv("TEST_TOKEN_PADARIA", "tok-padaria-41f2")
    path = tmp_path / "tenants.toml"
    path.write_text(
        "[[tenants]]\n"
        'name = "Padaria Central"\n'
        'phone_number_id = "111111111111111"\n'
        'whatsapp_token_env = "TEST_TOKEN_PADARIA"\n'
        "daily_budget_usd = 0.05\n",
        encoding="utf-8",
    )
    settings = priced(
        database_url,
        price_input_per_million_usd=10.0,
        tenants_file=path,
        phone_number_id=None,
        whatsapp_token=None,
    )
    fakes.gemini_queue.extend(spending(prompt_tokens))
    async with running_app(settings, fakes) as app:
        await app.post(to("111111111111111", "one", "wamid.y1"))
        await app.settle_all()
        spent_today = await app.services.store.usage.spent_today(["111111111111111"])
        await app.post(to("111111111111111", "two", "wamid.y2"))
        await app.settle_all()
    assert spent_today == spent
    assert bodies(fakes) == ["First.", second_reply]


@pytest.mark.parametrize(
    ("prompt_tokens", "second_reply"),
    [
        pytest.param(1000, BUDGET_EN, id="used-equals-the-limit"),
        pytest.param(999, "Second.", id="a-token-under"),
    ],
)
async def test_a_users_token_limit_is_reached_when_their_tokens_equal_it(
    database_url: str, fakes: FakeUpstreams, prompt_tokens: int, second_reply: str
) -> None:
    fakes.gemini_queue.extend(spending(prompt_tokens))
    async with running_app(priced(database_url, user_daily_token_limit=1000), fakes) as app:
        await say(app, "one", "wamid.z1")
        used = await app.services.store.usage.user_tokens_today(conversation(USER))
        await say(app, "two", "wamid.z2")
    assert used == prompt_tokens
    assert bodies(fakes) == ["First.", second_reply]
