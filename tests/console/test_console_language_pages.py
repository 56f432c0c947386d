"""The console's pages in the operator's language: chosen by Accept-Language or CONSOLE_LANGUAGE,
said in `<html lang>`, every word of a page translated, and dates, numbers and money in the
locale's form; the English names stay as the contract lists them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from console_apps import ADMIN_PASSWORD, Console, console_app, number_id
from console_support import sign_in, signed_in, visible_text
from respx_upstreams import FakeUpstreams
from usage_support import add_day

from console.languages import load_languages

BAKERY = "Padaria Central"
LANGUAGES = load_languages()
BRAZIL = "pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7"
MEXICO = "es-MX,es;q=0.9,en;q=0.8"
# English words that must not be left on a page in another language.
ENGLISH_WORDS = (
    "Sign out",
    "Conversations",
    "Knowledge",
    "Usage",
    "Operators",
    "Assistant console",
)


@asynccontextmanager
async def speaking(
    database_url: str, fakes: FakeUpstreams, browser: str, **overrides: Any
) -> AsyncIterator[Console]:
    """The console with one business, its client a browser that asks for `browser`'s languages,
    the admin signed in."""
    async with console_app(database_url, fakes, businesses=[BAKERY], **overrides) as console:
        console.client.headers["Accept-Language"] = browser
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        yield console


def html_lang(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', html)
    assert found is not None
    return found[1]


def buttons(html: str) -> list[str]:
    return [visible_text(b).strip() for b in re.findall(r"<button\b.*?</button>", html, re.S)]


def labels(html: str) -> list[str]:
    return [visible_text(b).strip() for b in re.findall(r"<label\b.*?</label>", html, re.S)]


@pytest.mark.parametrize(
    ("browser", "lang", "words"),
    [
        (BRAZIL, "pt-BR", ["Usuário", "Senha", "Entrar"]),
        (MEXICO, "es", ["Usuario", "Contraseña", "Iniciar sesión"]),
        ("en-GB,en;q=0.9", "en", ["Username", "Password", "Sign in"]),
        ("fr-FR,fr;q=0.9,de;q=0.8", "en", ["Username", "Password", "Sign in"]),
        ("", "en", ["Username", "Password", "Sign in"]),
    ],
)
async def test_the_sign_in_page_speaks_the_browsers_language(
    database_url: str, fakes: FakeUpstreams, browser: str, lang: str, words: list[str]
) -> None:
    async with console_app(database_url, fakes) as console:
        page = await console.client.get("/console/login", headers={"Accept-Language": browser})
    assert page.status_code == 200
    assert html_lang(page.text) == lang
    assert labels(page.text) == words[:2]
    assert buttons(page.text) == words[2:]


async def test_a_wrong_password_is_said_in_the_browsers_language(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        refused = await sign_in(console.client, "admin", "wrong", **{"Accept-Language": MEXICO})
    assert refused.status_code == 401
    assert "Usuario o contraseña incorrectos." in refused.text


async def test_console_language_overrides_the_browser(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with speaking(database_url, fakes, BRAZIL, console_language="es") as console:
        login = await console.client.get("/console/login?next=/console/usage")
        page = await console.client.get("/console")
    assert html_lang(page.text) == "es"
    assert "<h1>Conversaciones</h1>" in page.text
    assert "Cerrar sesión" in buttons(page.text)
    assert "Conversas" not in page.text
    assert login.status_code == 303  # signed in already: straight on


@pytest.mark.parametrize("setting", ["en", "pt-BR"])
async def test_a_fixed_language_is_everyones(
    database_url: str, fakes: FakeUpstreams, setting: str
) -> None:
    async with console_app(database_url, fakes, console_language=setting) as console:
        for browser in (BRAZIL, MEXICO, "en-US"):
            page = await console.client.get("/console/login", headers={"Accept-Language": browser})
            assert html_lang(page.text) == setting


def shown_times(page: str) -> dict[float, str]:
    """Each `<time>` of a page: its moment (epoch seconds) and the words shown for it."""
    return {
        datetime.strptime(moment, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp(): text
        for moment, text in re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', page)
    }


async def test_a_conversation_in_portuguese(database_url: str, fakes: FakeUpstreams) -> None:
    async with speaking(database_url, fakes, BRAZIL) as console:
        conversation = await console.write("Vocês abrem no domingo?", name="Joana Ribeiro")
        at = (await console.conversation(conversation)).last_user_at
        url = f"/console/conversations/{conversation}"
        page = (await console.client.get(url)).text
        listed = (await console.client.get("/console")).text
        taken = await console.client.post(f"{url}/take-over")
        after = (await console.client.get(url)).text
    assert html_lang(page) == "pt-BR"
    assert buttons(page)[1:3] == ["Assumir conversa", "Enviar"]
    assert "Resposta" in labels(page)
    assert "Modelo" not in labels(page)  # no WABA id: the form says why instead
    assert "Os modelos precisam de WHATSAPP_BUSINESS_ACCOUNT_ID" in page
    assert "O assistente responde" in page and "Janela aberta até" in page
    # The message's time as the page has it (its turn's, a moment after Meta's timestamp,
    # which may be in the next minute): shown, and in the locale's form.
    times = shown_times(page)
    assert at is not None and any(abs(moment - at) < 60 for moment in times)
    assert all(text == LANGUAGES["pt-BR"].when(moment) for moment, text in times.items())
    assert "Assistente" in visible_text(listed) and "<h1>Conversas</h1>" in listed
    assert taken.status_code == 303
    assert "Você assumiu esta conversa." in after and "Com você" in after
    assert buttons(after)[1:3] == ["Devolver ao assistente", "Enviar"]
    for english in (*ENGLISH_WORDS, "Take over", "Hand back", "Window open until"):
        assert english not in page, english


async def test_a_reply_refused_is_said_in_spanish(database_url: str, fakes: FakeUpstreams) -> None:
    async with speaking(database_url, fakes, MEXICO, console_session_hours=48) as console:
        conversation = await console.write("Hola")
        console.clock.advance(25 * 3600)
        url = f"/console/conversations/{conversation}"
        await console.client.post(f"{url}/reply", data={"text": "¿Sigues ahí?"})
        page = (await console.client.get(url)).text
    assert "No se envió. El cliente escribió por última vez hace 25 horas." in page
    assert "Ventana cerrada" in page


async def test_the_error_page_in_spanish(database_url: str, fakes: FakeUpstreams) -> None:
    async with speaking(database_url, fakes, MEXICO) as console:
        missing = await console.client.get("/console/conversations/999999")
    assert missing.status_code == 404
    assert html_lang(missing.text) == "es"
    assert "<h1>No disponible</h1>" in missing.text
    assert "Aquí no hay nada, o no tienes acceso a esto." in missing.text


@pytest.mark.parametrize(
    ("browser", "lang", "figures", "money"),
    [
        (BRAZIL, "pt-BR", "12 11 1 15.300 2.048 700 0 2", "US$\xa00,0123"),
        (MEXICO, "es", "12 11 1 15.300 2.048 700 0 2", "0,0123\xa0US$"),
        ("en-US", "en", "12 11 1 15,300 2,048 700 0 2", "$0.0123"),
    ],
)
async def test_usage_figures_in_the_locales_form(
    database_url: str, fakes: FakeUpstreams, browser: str, lang: str, figures: str, money: str
) -> None:
    async with speaking(database_url, fakes, browser, daily_budget_usd=5.0) as console:
        await add_day(
            console.store.usage,
            0,
            number_id(0),
            messages=12,
            answers=11,
            handoffs=1,
            prompt_tokens=15_300,
            output_tokens=2_048,
            tts_tokens=700,
            searches=2,
            cost_usd=0.0123,
        )
        page = (await console.client.get("/console/usage")).text
    language = LANGUAGES[lang]
    today = language.day(datetime.now(UTC).date().isoformat())
    row = re.search(r'<tr class="day today">.*?</tr>', page, re.S)
    assert row is not None
    assert visible_text(row[0]).split() == [
        *language.gettext("%(day)s (today)", day=today).split(),
        *figures.split(),
        *money.replace("\xa0", " ").split(),
    ]
    assert (
        language.gettext(
            "Today: %(spent)s of %(limit)s (%(share)s)",
            spent=language.money(0.0123),
            limit=language.money(5.0),
            share=language.percent(0),
        )
        in page
    )
    assert f'"locale": "{lang}"' in page
