"""The console in Portuguese, Spanish and English in a real browser (Debian's Chromium through
Playwright, a real uvicorn), the language the browser's (Accept-Language from its locale) or
CONSOLE_LANGUAGE's, at phone and desktop widths: signing in, the list, a conversation's buttons
by their names in that language, times, figures and money in its form, `<html lang>`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browser_support import DESKTOP, PHONE, Tab, open_tab
from console_apps import ADMIN_PASSWORD, Served, number_id, served_console
from playwright.sync_api import Browser, Page, ViewportSize, expect
from respx_upstreams import FakeUpstreams
from usage_support import add_day

from console.languages import Language, load_languages

LANGUAGES = load_languages()


@dataclass(frozen=True)
class Words:
    """What an operator reads in one language, written out (not taken from the catalogues)."""

    lang: str
    username: str
    password: str
    sign_in: str
    conversations: str
    waiting: str
    take_over: str
    hand_back: str
    reply: str
    send: str
    took_over: str
    usage: str
    today: str  # the Usage table's row of today
    money: str  # $1.23 as the Usage table writes it with 4 decimals
    thousands: str  # the separator in 21,500
    chart: str  # the first chart's accessible name begins so

    @property
    def language(self) -> Language:
        return LANGUAGES[self.lang]


PORTUGUESE = Words(
    "pt-BR",
    "Usuário",
    "Senha",
    "Entrar",
    "Conversas",
    "Aguardando",
    "Assumir conversa",
    "Devolver ao assistente",
    "Resposta",
    "Enviar",
    "Você assumiu esta conversa.",
    "Uso",
    "(hoje)",
    "US$\xa01,2300",
    ".",
    "Mensagens, respostas e transferências por dia",
)
SPANISH = Words(
    "es",
    "Usuario",
    "Contraseña",
    "Iniciar sesión",
    "Conversaciones",
    "En espera",
    "Tomar la conversación",
    "Devolver al asistente",
    "Respuesta",
    "Enviar",
    "Tomaste esta conversación.",
    "Uso",
    "(hoy)",
    "1,2300\xa0US$",
    ".",
    "Mensajes, respuestas y derivaciones por día",
)
ENGLISH = Words(
    "en",
    "Username",
    "Password",
    "Sign in",
    "Conversations",
    "Waiting",
    "Take over",
    "Hand back",
    "Reply",
    "Send",
    "You took over this conversation.",
    "Usage",
    "(today)",
    "$1.2300",
    ",",
    "Messages, answers and handoffs per day",
)
BROWSERS = [("pt-BR", PORTUGUESE), ("es-MX", SPANISH), ("en-GB", ENGLISH)]
WIDTHS = [PHONE, DESKTOP]


def seed(served: Served) -> int:
    """A customer who asked for a person, and today's usage: $1.23 and 21,500 tokens."""
    conversation = served.write("Vocês abrem no domingo?", name="Joana Ribeiro")
    served.write("/human", name="Joana Ribeiro")
    usage = served.store.usage
    served.run(
        add_day(
            usage, 0, number_id(0), messages=14, answers=13, prompt_tokens=21_500, cost_usd=1.23
        )
    )
    return conversation


@pytest.fixture(name="shop")
def shop_fixture(tmp_path: Path, fakes: FakeUpstreams) -> Iterator[Served]:
    with served_console(f"sqlite:///{tmp_path}/words.db", fakes, businesses=["Padaria"]) as served:
        seed(served)
        yield served


def sign_in(tab: Tab, words: Words) -> Page:
    page = tab.page
    page.goto(f"{tab.url}/console")
    expect(page.locator("html")).to_have_attribute("lang", words.lang)
    page.get_by_label(words.username).fill("admin")
    page.get_by_label(words.password).fill(ADMIN_PASSWORD)
    page.get_by_role("button", name=words.sign_in).click()
    expect(page.get_by_role("heading", name=words.conversations)).to_be_visible()
    return page


def times_in(page: Page, lang: str) -> None:
    """Every time on the page as Intl writes it in `lang` (the browser's own regional form of
    it), never the server's UTC text."""
    shown = page.locator("time[datetime]").first
    expect(shown).not_to_contain_text("UTC")
    written = shown.evaluate(
        """(el, lang) => {
            const own = navigator.languages.find(t => t.split("-")[0] === lang.split("-")[0]);
            const style = {dateStyle: "medium", timeStyle: "short"};
            const format = new Intl.DateTimeFormat(own || lang, style);
            return format.format(new Date(el.getAttribute("datetime")));
        }""",
        lang,
    )
    expect(shown).to_have_text(written)


def fits(page: Page, viewport: ViewportSize) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]


@pytest.mark.parametrize("viewport", WIDTHS, ids=["390", "1280"])
@pytest.mark.parametrize(("locale", "words"), BROWSERS, ids=[b[0] for b in BROWSERS])
def test_the_console_in_the_browsers_language(
    browser: Browser, shop: Served, locale: str, words: Words, viewport: ViewportSize
) -> None:
    tab = open_tab(browser, shop.url, viewport, locale=locale)
    page = sign_in(tab, words)
    row = page.get_by_role("link", name=re.compile("Joana Ribeiro"))
    expect(row).to_contain_text(words.waiting)
    times_in(page, words.lang)
    fits(page, viewport)

    row.click()
    expect(page.get_by_label(words.reply)).to_be_visible()
    page.get_by_role("button", name=words.take_over).click()
    expect(page.get_by_role("status")).to_have_text(words.took_over)
    expect(page.get_by_role("button", name=words.hand_back)).to_be_visible()
    expect(page.get_by_role("button", name=words.send)).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", words.lang)
    times_in(page, words.lang)
    fits(page, viewport)

    page.get_by_role("link", name=words.usage, exact=True).click()
    day = words.language.day(datetime.now(UTC).date().isoformat())
    today = page.get_by_role("row", name=re.compile(re.escape(f"{day} {words.today}")))
    cells = today.get_by_role("cell")
    tokens = re.compile("^21" + re.escape(words.thousands) + "5[0-9]{2}$")  # and the answers'
    expect(cells.nth(3)).to_have_text(tokens)
    expect(cells.last).to_have_text(words.money)
    expect(page.get_by_role("img", name=re.compile(f"^{words.chart}, "))).to_have_count(1)
    assert tab.errors == [] and tab.dialogs == []


def test_console_language_overrides_a_portuguese_browser(
    browser: Browser, tmp_path: Path, fakes: FakeUpstreams
) -> None:
    database_url = f"sqlite:///{tmp_path}/fixed.db"
    with served_console(
        database_url, fakes, businesses=["Padaria"], console_language="es"
    ) as served:
        seed(served)
        for viewport in WIDTHS:
            tab = open_tab(browser, served.url, viewport, locale="pt-BR")
            page = sign_in(tab, SPANISH)
            times_in(page, "es")
            page.get_by_role("link", name=re.compile("Joana Ribeiro")).click()
            expect(page.get_by_role("button", name=SPANISH.take_over)).to_be_visible()
            expect(page.get_by_role("button", name=PORTUGUESE.take_over)).to_have_count(0)
            fits(page, viewport)
            assert tab.errors == []
            tab.page.context.close()
