"""The Usage page over the store: what the webhook's messages really added up to today, per
business, and whether each budget bites."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from console_apps import ADMIN_PASSWORD
from console_support import signed_in, visible_text
from helpers import make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams, gemini_answer

BAKERY, GARAGE = "111111111111111", "222222222222222"
TENANTS = f"""
[[tenants]]
name = "Padaria Central"
phone_number_id = "{BAKERY}"
whatsapp_token_env = "TEST_TOKEN_PADARIA"
daily_budget_usd = 0.002

[[tenants]]
name = "Oficina do Zé"
phone_number_id = "{GARAGE}"
whatsapp_token_env = "TEST_TOKEN_OFICINA"
"""
# 1,000 prompt tokens at $2/M and 100 output tokens at $10/M: $0.003 an answer.
PRICES = {"price_input_per_million_usd": 2.0, "price_output_per_million_usd": 10.0}


def to(number_id: str, body: str, message_id: str) -> Any:
    payload = copy.deepcopy(text_payload(body, message_id=message_id))
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = number_id
    return payload


def rows(html: str) -> list[str]:
    found = re.findall(r"<tr class=\"(?:day|totals).*?</tr>", html, re.S)
    return [visible_text(r).strip() for r in found]


def budgets(html: str) -> list[str]:
    return [visible_text(b).strip() for b in re.findall(r'<li class="budget.*?</li>', html, re.S)]


async def test_todays_messages_tokens_cost_and_budgets_come_from_the_store(
    database_url: str, fakes: FakeUpstreams, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_TOKEN_PADARIA", "tok-padaria-41f2")
    monkeypatch.setenv("TEST_TOKEN_OFICINA", "tok-oficina-9c3e")
    path = tmp_path / "tenants.toml"
    path.write_text(TENANTS, encoding="utf-8")
    settings = make_settings(
        database_url,
        tenants_file=path,
        phone_number_id=None,
        whatsapp_token=None,
        console_password=ADMIN_PASSWORD,
        daily_budget_usd=10.0,
        user_daily_token_limit=50_000,
        **PRICES,
    )
    fakes.gemini_queue.extend(gemini_answer(f"A{i}", 1000, 100) for i in range(3))
    async with running_app(settings, fakes) as app:
        for number_id, message_id in [
            (BAKERY, "wamid.p1"),
            (BAKERY, "wamid.p2"),  # over the bakery's $0.002: a person is asked for
            (GARAGE, "wamid.o1"),
            (GARAGE, "wamid.o2"),
        ]:
            assert (await app.post(to(number_id, "hello", message_id))).status_code == 200
            await app.settle_all()
        await signed_in(app.client, "admin", ADMIN_PASSWORD)
        everything = (await app.client.get("/console/usage")).text
        bakery = (
            await app.client.get("/console/usage", params={"business": "Padaria Central"})
        ).text

    today = rows(everything)[0]
    # day, messages, answers, handoffs, prompt, output, speech, searches, cost
    shown = r"[A-Z][a-z]{2} \d{1,2} \(today\) 4 3 1 3,000 300 0 0 0 \$0\.0090"  # "Dec 7"
    assert re.fullmatch(shown, today), today
    assert rows(bakery)[0].endswith("(today) 2 1 1 1,000 100 0 0 0 $0.0030")
    assert budgets(everything) == [
        "All businesses: Today: $0.01 of $10.00 (0%)",
        (
            "Padaria Central: Budget reached: the assistant stops answering until midnight UTC. "
            "Today: $0.0030 of $0.0020 (150%)."
        ),
    ]
    assert "50,000" in visible_text(everything)  # the per-user limit is shown
