"""The Usage page over HTTP: who sees which business's figures, the table and its totals, the 30
days, the budget states, names shown as text, and the charts' JSON data that is never code."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from console.usage_data import ALL_BUSINESSES
from console_support import (
    ADMIN_PASSWORD,
    Clock,
    Console,
    assert_console_headers,
    cheap_passwords,
    console_settings,
    signed_in,
    visible_text,
)
from knowledge_support import operator_client
from memory_data import MemoryConsoleData
from memory_usage import MemoryUsageData

from main import create_app

PAGE = "/console/usage"
BAKERY, GARAGE = "Padaria Central", "Oficina Rápida"
BREAKOUT = "</script><script>alert(1)</script>"
REACHED = "Budget reached: the assistant stops answering until midnight UTC"


@asynccontextmanager
async def usage_console(
    database_url: str, usage: MemoryUsageData | None, **overrides: Any
) -> AsyncIterator[Console]:
    """The app through create_app's `usage_data` (None: the default), the admin signed in; the
    console's data serves the same businesses."""
    clock = Clock()
    names = usage.business_names() if usage is not None else [BAKERY]
    data = MemoryConsoleData(names, clock=clock)
    if usage is not None:
        usage.clock = clock
    settings = console_settings(database_url, **overrides)
    app = create_app(settings, console_data=data, usage_data=usage)
    app.state.console.clock = clock
    app.state.console.passwords = cheap_passwords()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await signed_in(client, "admin", ADMIN_PASSWORD)
            yield Console(app, client, data, clock)


def rows(html: str) -> list[str]:
    """The table's rows as text: the days' newest first, then the totals."""
    found = re.findall(r"<tr class=\"(?:day|totals).*?</tr>", html, re.S)
    return [visible_text(r).strip() for r in found]


def chart(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="usage-data">(.*?)</script>', html, re.S)
    assert found is not None
    parsed: dict[str, Any] = json.loads(found.group(1))
    return parsed


def budgets(html: str) -> list[str]:
    return [visible_text(b).strip() for b in re.findall(r'<li class="budget.*?</li>', html, re.S)]


async def test_signed_out_nothing_is_shown_or_asked_for(database_url: str) -> None:
    usage = MemoryUsageData()
    usage.set_day(0, messages=7, cost_usd=0.5)
    async with usage_console(database_url, usage) as console:
        await console.client.post("/console/logout")
        for path in (PAGE, f"{PAGE}?business={BAKERY}"):
            response = await console.client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/console/login?next=/console/usage"
            assert response.text == ""
            assert_console_headers(response)
    assert usage.asked == []


async def test_an_operator_sees_only_the_business_they_serve(database_url: str) -> None:
    usage = MemoryUsageData((BAKERY, GARAGE))
    usage.set_day(0, BAKERY, messages=3, answers=3, cost_usd=0.25)
    usage.set_day(0, GARAGE, messages=40, answers=38, handoffs=2, cost_usd=9.75)
    usage.set_budget(ALL_BUSINESSES, 20.0, 10.0)
    usage.set_budget(GARAGE, 12.0, 9.75)
    async with usage_console(database_url, usage) as console:
        admin = (await console.client.get(PAGE)).text
        assert rows(admin)[0].startswith(f"{date_of(usage, 0)} (today) 43 41 2")
        assert "$10.0000" in rows(admin)[0]
        assert admin.count('href="/console/usage?business=') == 2
        assert f'<a href="{PAGE}" aria-current="true">{ALL_BUSINESSES}</a>' in admin
        assert budgets(admin) == [
            "All businesses: Today: $10.00 of $20.00 (50%)",
            f"{GARAGE}: Today: $9.75 of $12.00 (81%)",
        ]
        garage = (await console.client.get(PAGE, params={"business": GARAGE})).text
        assert rows(garage)[0].startswith(f"{date_of(usage, 0)} (today) 40 38 2")
        assert usage.asked_for("days") == [None, frozenset({GARAGE})]
        usage.asked.clear()
        async with operator_client(console, "maria", [BAKERY]) as maria:
            page = await maria.get(PAGE)
            assert page.status_code == 200
            assert rows(page.text)[0].startswith(f"{date_of(usage, 0)} (today) 3 3 0")
            assert "$0.2500" in page.text and "$9.7500" not in page.text
            assert GARAGE not in page.text  # no chooser, no budget of another business
            assert budgets(page.text) == ["All businesses: A daily budget is set"]  # no amounts
            assert "$20.00" not in page.text and "$10.00" not in page.text
            assert '<a href="/console/usage" aria-current="page">Usage</a>' in page.text
            for business in (GARAGE, "nobody"):
                response = await maria.get(PAGE, params={"business": business})
                assert response.status_code == 404
                assert "$9.75" not in response.text
    assert usage.asked_for("days") == [frozenset({BAKERY})]
    assert usage.asked_for("budgets") == [frozenset({BAKERY})]


async def test_an_operator_of_several_businesses_sees_theirs_together(database_url: str) -> None:
    third = "Floricultura Ipê"
    usage = MemoryUsageData((BAKERY, GARAGE, third))
    for business, messages in ((BAKERY, 1), (GARAGE, 10), (third, 100)):
        usage.set_day(1, business, messages=messages)
    async with (
        usage_console(database_url, usage) as console,
        operator_client(console, "joao", [BAKERY, third]) as joao,
    ):
        together = (await joao.get(PAGE)).text
        one = (await joao.get(PAGE, params={"business": third})).text
    assert rows(together)[1].startswith(f"{date_of(usage, 1)} 101 ")
    assert rows(one)[1].startswith(f"{date_of(usage, 1)} 100 ")
    links = re.findall(r'<a href="(/console/usage[^"]*)"', together)
    assert links == [
        "/console/usage",  # the header's
        "/console/usage",
        "/console/usage?business=Padaria+Central",
        "/console/usage?business=Floricultura+Ip%C3%AA",
    ]
    assert GARAGE not in together and GARAGE not in one
    assert usage.asked_for("days") == [frozenset({BAKERY, third}), frozenset({third})]


def date_of(usage: MemoryUsageData, days_ago: int) -> str:
    return (usage.today() - timedelta(days=days_ago)).isoformat()


async def test_the_table_shows_each_days_figures_newest_first_and_the_totals(
    database_url: str,
) -> None:
    usage = MemoryUsageData()
    usage.set_day(
        0,
        messages=12,
        answers=11,
        handoffs=1,
        prompt_tokens=15_300,
        output_tokens=2_048,
        tts_tokens=700,
        searches=2,
        cost_usd=0.0123,
    )
    usage.set_day(2, messages=1_204, answers=1_190, prompt_tokens=1_250_000, cost_usd=1.5)
    usage.set_day(29, messages=1, answers=1, output_tokens=5, cost_usd=0.00004)
    usage.set_day(30, messages=999, cost_usd=99.0)  # a day before the window: not shown
    async with usage_console(database_url, usage) as console:
        html = (await console.client.get(PAGE)).text
    table = rows(html)
    assert table[0] == f"{date_of(usage, 0)} (today) 12 11 1 15,300 2,048 700 2 $0.0123"
    assert table[1] == f"{date_of(usage, 1)} 0 0 0 0 0 0 0 $0.0000"
    assert table[2] == f"{date_of(usage, 2)} 1,204 1,190 0 1,250,000 0 0 0 $1.5000"
    assert table[29] == f"{date_of(usage, 29)} 1 1 0 0 5 0 0 $0.0000"
    assert table[30] == "Total 1,217 1,202 1 1,265,300 2,053 700 2 $1.5123"
    assert len(table) == 31
    assert (
        "An estimate from the token counts Gemini reports and the prices in the settings; "
        "Google&#39;s bill is the truth, and Meta bills WhatsApp conversations separately."
    ) in html
    assert "The last 30 days (UTC) for Padaria Central." in visible_text(html)


@pytest.mark.parametrize("given", [True, False])
async def test_thirty_days_are_listed_with_the_days_without_anything(
    database_url: str, given: bool
) -> None:
    """Given data, or the default (EmptyUsageData) when the lifespan sets none."""
    usage = MemoryUsageData() if given else None
    async with usage_console(database_url, usage) as console:
        html = (await console.client.get(PAGE)).text
        today = datetime.fromtimestamp(console.clock(), UTC).date()
    table = rows(html)
    expected = [(today - timedelta(days=i)).isoformat() for i in range(30)]
    assert [r.split(" ")[0] for r in table[:-1]] == expected
    assert all(r.endswith(" 0 0 0 0 0 0 0 $0.0000") for r in table)
    data = chart(html)
    assert data["days"] == list(reversed(expected))
    assert data["messages"] == [0] * 30 and data["cost_usd"] == [0.0] * 30
    if usage is not None:
        assert usage.asked_for("days") == [None]
    else:
        assert budgets(html) == ["All businesses: No daily budget set"]


@pytest.mark.parametrize(
    ("limit", "spent", "shown"),
    [
        (None, 3.5, "All businesses: No daily budget set"),
        (5.0, 1.23, "All businesses: Today: $1.23 of $5.00 (25%)"),
        (5.0, 5.02, f"All businesses: {REACHED}. Today: $5.02 of $5.00 (100%)."),
    ],
)
async def test_todays_budget_state(
    database_url: str, limit: float | None, spent: float, shown: str
) -> None:
    usage = MemoryUsageData()
    usage.set_budget(ALL_BUSINESSES, limit, spent)
    async with usage_console(database_url, usage) as console:
        html = (await console.client.get(PAGE)).text
    assert budgets(html) == [shown]
    reached = '<li class="budget budget-reached">' in html
    assert reached == (limit is not None and spent >= limit)
    assert "tokens a day" not in html  # no per-user limit set


async def test_a_business_budget_reached_and_the_per_user_limit(database_url: str) -> None:
    usage = MemoryUsageData((BAKERY, GARAGE))
    usage.set_budget(GARAGE, 2.0, 2.0)
    usage.token_limit = 50_000
    async with usage_console(database_url, usage) as console:
        html = (await console.client.get(PAGE)).text
        async with operator_client(console, "maria", [GARAGE]) as maria:
            theirs = (await maria.get(PAGE)).text
    assert budgets(html) == [
        "All businesses: No daily budget set",
        f"{GARAGE}: {REACHED}. Today: $2.00 of $2.00 (100%).",
    ]
    assert budgets(theirs) == budgets(html)  # their own business's amounts are theirs to see
    assert "Each user may use up to 50,000 tokens a day (UTC)." in html
    assert usage.asked_for("budgets") == [None, frozenset({GARAGE})]


async def test_a_business_name_with_markup_is_shown_as_text(database_url: str) -> None:
    name = '<img src=x onerror="alert(1)">Bolo & Cia'
    usage = MemoryUsageData((BAKERY, name))
    usage.set_budget(name, 3.0, 1.0)
    async with usage_console(database_url, usage) as console:
        chooser = (await console.client.get(PAGE)).text
        page = (await console.client.get(PAGE, params={"business": name})).text
    for html in (chooser, page):
        assert "<img" not in html
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;Bolo &amp; Cia" in html
    assert "for &lt;img src=x onerror=&#34;alert(1)&#34;&gt;Bolo &amp; Cia." in page
    assert chart(page)["business"] == name


async def test_the_charts_data_is_the_tables_figures_and_never_code(database_url: str) -> None:
    usage = MemoryUsageData((BREAKOUT,))
    usage.set_day(0, messages=5, answers=4, handoffs=1, prompt_tokens=900, cost_usd=0.0042)
    usage.set_day(3, output_tokens=321, tts_tokens=77, cost_usd=0.5)
    async with usage_console(database_url, usage) as console:
        html = (await console.client.get(PAGE, params={"business": BREAKOUT})).text
    data = chart(html)
    assert data["business"] == BREAKOUT
    assert len(data["days"]) == 30 and data["days"][-1] == date_of(usage, 0)
    assert data["messages"][-1] == 5 and data["answers"][-1] == 4 and data["handoffs"][-1] == 1
    assert data["prompt_tokens"][-1] == 900 and data["cost_usd"][-1] == 0.0042
    assert data["output_tokens"][-4] == 321 and data["tts_tokens"][-4] == 77
    assert data["cost_usd"][-4] == 0.5 and sum(data["messages"]) == 5
    assert set(data) == {
        "business",
        "days",
        "messages",
        "answers",
        "handoffs",
        "prompt_tokens",
        "output_tokens",
        "tts_tokens",
        "cost_usd",
    }
    assert "alert(1)</script>" not in html and "<script>alert" not in html
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert len(scripts) == html.count("</script>") == 4  # console.js, the data, uPlot, usage.js
    element = re.search(r'id="usage-data">(.*?)</script>', html, re.S)
    assert element is not None and "<" not in element.group(1)
    assert "\\u003c/script\\u003e" in element.group(1)


async def test_the_page_loads_uplot_and_its_script_from_the_app(database_url: str) -> None:
    async with usage_console(database_url, MemoryUsageData()) as console:
        html = (await console.client.get(PAGE)).text
        addresses = re.findall(r'(?:src|href)="(/console/static/[^"]+)"', html)
        responses = {a.split("?")[0]: await console.client.get(a) for a in addresses}
    assert set(responses) == {
        "/console/static/console.css",
        "/console/static/console.js",
        "/console/static/vendor/uplot/uPlot.min.css",
        "/console/static/vendor/uplot/uPlot.iife.min.js",
        "/console/static/usage.js",
    }
    for address, response in responses.items():
        assert response.status_code == 200, address
        assert_console_headers(response, page=False)
        kind = "css" if address.endswith(".css") else "javascript"
        assert kind in response.headers["content-type"]
    uplot = responses["/console/static/vendor/uplot/uPlot.iife.min.js"].text
    assert uplot.startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    assert "https://" not in html.replace("https://github.com", "")  # nothing from a CDN
