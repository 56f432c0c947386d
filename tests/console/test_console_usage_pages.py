"""The Usage page over HTTP and the store: who sees which business's figures, the table and its
totals, the 30 days, the budget states, names shown as text, and the charts' JSON data that is
never code."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from console_apps import (
    ADMIN_PASSWORD,
    Console,
    Tenant,
    console_app,
    customer_message,
    number_id,
)
from console_support import assert_console_headers, operator_client, signed_in, visible_text
from respx_upstreams import FakeUpstreams
from usage_support import add_day

from console.languages import ENGLISH
from storage.holds import Limits
from webhook.events import parse_webhook

PAGE = "/console/usage"
ALL_BUSINESSES = "All businesses"
BAKERY, GARAGE = "Padaria Central", "Oficina Rápida"
BREAKOUT = "</script><script>alert(1)</script>"
REACHED = "Budget reached: the assistant stops answering until midnight UTC"
GONE = "999999999999999"  # a business since taken out of the tenants file


@asynccontextmanager
async def usage_console(
    database_url: str,
    fakes: FakeUpstreams,
    businesses: Sequence[Tenant | str] = (BAKERY,),
    **overrides: Any,
) -> AsyncIterator[Console]:
    """The app over the store, these businesses (numbered in order), the admin signed in."""
    async with console_app(database_url, fakes, businesses=businesses, **overrides) as console:
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        yield console


def date_of(days_ago: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days_ago)).isoformat()


def day_of(days_ago: int) -> str:
    """A day as the English table says it: "Dec 7"."""
    return ENGLISH.day(date_of(days_ago))


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


async def test_signed_out_nothing_is_shown(database_url: str, fakes: FakeUpstreams) -> None:
    async with usage_console(database_url, fakes) as console:
        await add_day(console.store.usage, 0, number_id(0), messages=7, cost_usd=0.5)
        await console.client.post("/console/logout")
        for path in (PAGE, f"{PAGE}?business={BAKERY}"):
            response = await console.client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/console/login?next=/console/usage"
            assert response.text == ""
            assert_console_headers(response)


async def test_an_operator_sees_only_the_business_they_serve(
    database_url: str, fakes: FakeUpstreams
) -> None:
    businesses = (BAKERY, Tenant(GARAGE, daily_budget_usd=12.0))
    async with usage_console(database_url, fakes, businesses, daily_budget_usd=20.0) as console:
        usage = console.store.usage
        await add_day(usage, 0, number_id(0), messages=3, answers=3, cost_usd=0.25)
        await add_day(usage, 0, number_id(1), messages=40, answers=38, handoffs=2, cost_usd=9.75)
        admin = (await console.client.get(PAGE)).text
        assert rows(admin)[0].startswith(f"{day_of(0)} (today) 43 41 2")
        assert "$10.0000" in rows(admin)[0]
        assert admin.count('href="/console/usage?business=') == 2
        assert f'<a href="{PAGE}" aria-current="true">{ALL_BUSINESSES}</a>' in admin
        assert budgets(admin) == [
            "All businesses: Today: $10.00 of $20.00 (50%)",
            f"{GARAGE}: Today: $9.75 of $12.00 (81%)",
        ]
        garage = (await console.client.get(PAGE, params={"business": GARAGE})).text
        assert rows(garage)[0].startswith(f"{day_of(0)} (today) 40 38 2")
        assert budgets(garage) == [
            "All businesses: Today: $10.00 of $20.00 (50%)",
            f"{GARAGE}: Today: $9.75 of $12.00 (81%)",
        ]
        async with operator_client(console, "maria", [BAKERY]) as maria:
            page = await maria.get(PAGE)
            assert page.status_code == 200
            assert rows(page.text)[0].startswith(f"{day_of(0)} (today) 3 3 0")
            assert "$0.2500" in page.text and "$9.7500" not in page.text
            assert GARAGE not in page.text  # no chooser, no budget of another business
            assert budgets(page.text) == ["All businesses: A daily budget is set"]  # no amounts
            assert "$20.00" not in page.text and "$10.00" not in page.text
            assert '<a href="/console/usage" aria-current="page">Usage</a>' in page.text
            for business in (GARAGE, "nobody"):
                response = await maria.get(PAGE, params={"business": business})
                assert response.status_code == 404
                assert "$9.75" not in response.text


async def test_the_admin_sees_businesses_no_longer_served_and_operators_do_not(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with usage_console(database_url, fakes, (BAKERY, GARAGE)) as console:
        usage = console.store.usage
        await add_day(usage, 0, number_id(0), messages=3, cost_usd=0.25)
        await add_day(usage, 0, GONE, messages=20, cost_usd=1.0)
        admin = (await console.client.get(PAGE)).text
        async with operator_client(console, "joao", [BAKERY, GARAGE]) as joao:
            theirs = (await joao.get(PAGE)).text
    assert rows(admin)[0].startswith(f"{day_of(0)} (today) 23 ")
    assert "$1.2500" in rows(admin)[0]
    assert rows(theirs)[0].startswith(f"{day_of(0)} (today) 3 ")  # the same two businesses
    assert "$1.2500" not in theirs


async def test_an_operator_of_several_businesses_sees_theirs_together(
    database_url: str, fakes: FakeUpstreams
) -> None:
    third = "Floricultura Ipê"
    async with usage_console(database_url, fakes, (BAKERY, GARAGE, third)) as console:
        for index, messages in ((0, 1), (1, 10), (2, 100)):
            await add_day(console.store.usage, 1, number_id(index), messages=messages)
        async with operator_client(console, "joao", [BAKERY, third]) as joao:
            together = (await joao.get(PAGE)).text
            one = (await joao.get(PAGE, params={"business": third})).text
    assert rows(together)[1].startswith(f"{day_of(1)} 101 ")
    assert rows(one)[1].startswith(f"{day_of(1)} 100 ")
    links = re.findall(r'<a href="(/console/usage[^"]*)"', together)
    assert links == [
        "/console/usage",  # the header's
        "/console/usage",
        "/console/usage?business=Padaria+Central",
        "/console/usage?business=Floricultura+Ip%C3%AA",
    ]
    assert GARAGE not in together and GARAGE not in one


async def test_the_table_shows_each_days_figures_newest_first_and_the_totals(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with usage_console(database_url, fakes) as console:
        usage, bakery = console.store.usage, number_id(0)
        await add_day(
            usage,
            0,
            bakery,
            messages=12,
            answers=11,
            handoffs=1,
            prompt_tokens=15_300,
            output_tokens=2_048,
            tts_tokens=700,
            searches=2,
            embedding_tokens=4_096,
            cost_usd=0.0123,
        )
        await add_day(
            usage, 2, bakery, messages=1_204, answers=1_190, prompt_tokens=1_250_000, cost_usd=1.5
        )
        await add_day(usage, 29, bakery, messages=1, answers=1, output_tokens=5, cost_usd=0.00004)
        await add_day(usage, 30, bakery, messages=99, cost_usd=99.0)  # before the window
        html = (await console.client.get(PAGE)).text
    table = rows(html)
    assert table[0] == f"{day_of(0)} (today) 12 11 1 15,300 2,048 700 4,096 2 $0.0123"
    assert table[1] == f"{day_of(1)} 0 0 0 0 0 0 0 0 $0.0000"
    assert table[2] == f"{day_of(2)} 1,204 1,190 0 1,250,000 0 0 0 0 $1.5000"
    assert table[29] == f"{day_of(29)} 1 1 0 0 5 0 0 0 $0.0000"
    assert table[30] == "Total 1,217 1,202 1 1,265,300 2,053 700 4,096 2 $1.5123"
    assert len(table) == 31
    assert (
        "An estimate from the token counts Gemini reports and the prices in the settings; "
        "Google&#39;s bill is the truth, and Meta bills WhatsApp conversations separately."
    ) in html
    assert "The last 30 days (UTC) for Padaria Central." in visible_text(html)


async def test_thirty_days_are_listed_with_the_days_without_anything(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with usage_console(database_url, fakes) as console:
        await add_day(console.store.usage, 5, number_id(0), messages=1)
        html = (await console.client.get(PAGE)).text
        today = datetime.fromtimestamp(console.clock(), UTC).date()
    table = rows(html)
    expected = [(today - timedelta(days=i)).isoformat() for i in range(30)]
    assert [" ".join(r.split(" ")[:2]) for r in table[:-1]] == [ENGLISH.day(d) for d in expected]
    assert (
        table[5].endswith(" 1 0 0 0 0 0 0 0 $0.0000")
        and table[-1] == "Total 1 0 0 0 0 0 0 0 $0.0000"
    )
    assert all(r.endswith(" 0 0 0 0 0 0 0 0 $0.0000") for r in table[:5] + table[6:-1])
    data = chart(html)
    assert data["days"] == list(reversed(expected))
    assert data["messages"] == [0] * 24 + [1] + [0] * 5 and data["cost_usd"] == [0.0] * 30
    assert budgets(html) == ["All businesses: No daily budget set"]


@pytest.mark.parametrize(
    ("limit", "spent", "shown"),
    [
        (0.0, 3.5, "All businesses: No daily budget set"),
        (5.0, 1.23, "All businesses: Today: $1.23 of $5.00 (25%)"),
        (5.0, 5.02, f"All businesses: {REACHED}. Today: $5.02 of $5.00 (100%)."),
    ],
)
async def test_todays_budget_state(
    database_url: str, fakes: FakeUpstreams, limit: float, spent: float, shown: str
) -> None:
    async with usage_console(database_url, fakes, daily_budget_usd=limit) as console:
        await add_day(console.store.usage, 0, number_id(0), messages=1, cost_usd=spent)
        html = (await console.client.get(PAGE)).text
    assert budgets(html) == [shown]
    reached = '<li class="budget budget-reached">' in html
    assert reached == (limit > 0 and spent >= limit)
    assert "tokens a day" not in html  # no per-user limit set


async def test_a_business_budget_reached_and_the_per_user_limit(
    database_url: str, fakes: FakeUpstreams
) -> None:
    businesses = (BAKERY, Tenant(GARAGE, daily_budget_usd=2.0))
    async with usage_console(
        database_url, fakes, businesses, user_daily_token_limit=50_000
    ) as console:
        await add_day(console.store.usage, 0, number_id(1), messages=1, cost_usd=2.0)
        html = (await console.client.get(PAGE)).text
        async with operator_client(console, "maria", [GARAGE]) as maria:
            theirs = (await maria.get(PAGE)).text
    assert budgets(html) == [
        "All businesses: No daily budget set",
        f"{GARAGE}: {REACHED}. Today: $2.00 of $2.00 (100%).",
    ]
    assert budgets(theirs) == budgets(html)  # their own business's amounts are theirs to see
    assert "Each user may use up to 50,000 tokens a day (UTC)." in html


async def test_a_business_name_with_markup_is_shown_as_text(
    database_url: str, fakes: FakeUpstreams
) -> None:
    name = '<img src=x onerror="alert(1)">Bolo & Cia'
    businesses = (BAKERY, Tenant(name, daily_budget_usd=3.0))
    async with usage_console(database_url, fakes, businesses) as console:
        await add_day(console.store.usage, 0, number_id(1), messages=1, cost_usd=1.0)
        chooser = (await console.client.get(PAGE)).text
        page = (await console.client.get(PAGE, params={"business": name})).text
    for html in (chooser, page):
        assert "<img" not in html
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;Bolo &amp; Cia" in html
    assert "for &lt;img src=x onerror=&#34;alert(1)&#34;&gt;Bolo &amp; Cia." in page
    assert chart(page)["business"] == name


async def test_the_charts_data_is_the_tables_figures_and_never_code(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with usage_console(database_url, fakes, (BREAKOUT,)) as console:
        usage = console.store.usage
        await add_day(
            usage,
            0,
            number_id(0),
            messages=5,
            answers=4,
            handoffs=1,
            prompt_tokens=900,
            cost_usd=0.0042,
        )
        await add_day(
            usage, 3, number_id(0), messages=1, output_tokens=321, tts_tokens=77, cost_usd=0.5
        )
        html = (await console.client.get(PAGE, params={"business": BREAKOUT})).text
    data = chart(html)
    assert data["business"] == BREAKOUT
    assert len(data["days"]) == 30 and data["days"][-1] == date_of(0)
    assert data["messages"][-1] == 5 and data["answers"][-1] == 4 and data["handoffs"][-1] == 1
    assert data["prompt_tokens"][-1] == 900 and data["cost_usd"][-1] == 0.0042
    assert data["output_tokens"][-4] == 321 and data["tts_tokens"][-4] == 77
    assert data["cost_usd"][-4] == 0.5 and data["messages"][-4] == 1
    assert sum(data["messages"]) == 6
    assert set(data) == {
        "business",
        "days",
        "messages",
        "answers",
        "handoffs",
        "prompt_tokens",
        "output_tokens",
        "tts_tokens",
        "embedding_tokens",
        "cost_usd",
        "locale",
        "words",
    }
    assert "alert(1)</script>" not in html and "<script>alert" not in html
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert len(scripts) == html.count("</script>") == 4  # console.js, the data, uPlot, usage.js
    element = re.search(r'id="usage-data">(.*?)</script>', html, re.S)
    assert element is not None and "<" not in element.group(1)
    assert "\\u003c/script\\u003e" in element.group(1)


async def test_the_page_loads_uplot_and_its_script_from_the_app(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with usage_console(database_url, fakes) as console:
        await add_day(console.store.usage, 0, number_id(0), messages=1)
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


async def test_what_answers_under_way_hold_is_shown_beside_the_spend(
    database_url: str, fakes: FakeUpstreams
) -> None:
    """A claimed message's hold counts against the budget before its cost is known; the page
    says so, and stops saying it once the claim is gone."""
    businesses = (BAKERY, Tenant(GARAGE, daily_budget_usd=12.0))
    budgets_on = {"daily_budget_usd": 20.0, "external_workers": True}  # no answering here
    async with usage_console(database_url, fakes, businesses, **budgets_on) as console:
        store = console.store
        await add_day(store.usage, 0, number_id(1), messages=4, answers=4, cost_usd=1.5)
        [message] = parse_webhook(customer_message("hello", to=number_id(1))).messages
        await store.recorder.record([message])
        [(row_id, key)] = await store.inbox.claimable(10)
        assert await store.inbox.claim(row_id, key, "w1", 60.0) is not None
        limits = Limits(deployment=20.0, business=12.0)
        assert await store.holds.reserve(row_id, "w1", number_id(1), 0.25, limits) is None
        assert budgets((await console.client.get(PAGE)).text) == [
            "All businesses: Today: $1.50 of $20.00 (8%), $0.25 more held for answers under way",
            f"{GARAGE}: Today: $1.50 of $12.00 (12%), $0.25 more held for answers under way",
        ]
        await store.bursts.release([row_id], "w1")  # the claim given back: nothing held now
        assert budgets((await console.client.get(PAGE)).text) == [
            "All businesses: Today: $1.50 of $20.00 (8%)",
            f"{GARAGE}: Today: $1.50 of $12.00 (12%)",
        ]
