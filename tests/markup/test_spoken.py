"""Markdown answers become plain sentences for text-to-speech, in their own words and language."""

from __future__ import annotations

import pytest

from markup.spoken import MAX_SPOKEN_CHARS, host_name, speakable, too_long_to_speak

CASES = [
    # Bold inside a sentence, Portuguese accents kept.
    ("O pedido **chega amanhã** às 10h.", "O pedido chega amanhã às 10h."),
    ("Ação, coração e *promoção* não mudam", "Ação, coração e promoção não mudam."),
    ("***Muito*** importante e __também__ ~~riscado~~", "Muito importante e também riscado."),
    # Headings become sentences.
    ("## Horário de funcionamento\nAbrimos às 9h", "Horário de funcionamento. Abrimos às 9h."),
    ("# Preços: #", "Preços:"),
    # Lists: one sentence per item, markers and checkboxes gone, own punctuation kept.
    (
        "Você pode:\n- trocar o produto\n* pedir reembolso!\n+ falar conosco;",
        "Você pode: trocar o produto. pedir reembolso! falar conosco.",
    ),
    ("1. Abra o app\n2) Toque em **Pedidos**", "Abra o app. Toque em Pedidos."),
    ("- [x] pago\n  - [ ] enviado", "pago. enviado."),
    ("• Entrega grátis", "Entrega grátis."),
    # Links become labels; bare URLs and autolinks their host names.
    (
        'Veja [nossa loja](https://www.exemplo.com.br/loja?x=1 "Loja").',
        "Veja nossa loja.",
    ),
    ("More at https://www.example.com/path/to?q=1.", "More at example.com."),
    ("Fale em <https://wa.me/5511999999999>", "Fale em wa.me."),
    ("Visite www.example.org", "Visite example.org."),
    ("[](https://shop.example.com/x) ou ![logo](https://x.com/l.png)", "shop.example.com ou logo."),
    # Code keeps its content, loses its backticks and fences.
    ("Use o código `PROMO_10` no checkout.", "Use o código PROMO_10 no checkout."),
    ("Rode ``a `b` c``", "Rode a `b` c."),
    ("```bash\npip install x\n```\nPronto", "pip install x. Pronto."),
    # Tables: each row a comma-separated phrase.
    (
        "| Produto | Preço |\n|---|---:|\n| Camiseta | R$ 50,00 |\n| **Boné** | |",
        "Produto, Preço. Camiseta, R$ 50,00. Boné.",
    ),
    # Spanish and English, emoji and arrows dropped.
    ("¡Hola! 😊 ¿Cómo estás? 👍🏽", "¡Hola! ¿Cómo estás?"),
    ("Thanks 🙏.", "Thanks."),
    ("Pedidos → Trocas → Nova troca", "Pedidos, Trocas, Nova troca."),
    # What is not markup stays.
    ("snake_case and 2*3*4 and R$ 5", "snake_case and 2*3*4 and R$ 5."),
    ("> Citação\n\n---\n\n   espaços   demais   ", "Citação. espaços demais."),
    ("Linha um<br>linha dois", "Linha um linha dois."),
    ("", ""),
    ("  \n\n ```\n```\n", ""),
]


@pytest.mark.parametrize(("markdown", "expected"), CASES)
def test_speakable(markdown: str, expected: str) -> None:
    assert speakable(markdown) == expected


# Backticks left in a code span's text would be taken for a code span again.
@pytest.mark.parametrize(("markdown", "expected"), [c for c in CASES if "`" not in c[1]])
def test_speakable_output_is_already_speakable(markdown: str, expected: str) -> None:
    assert speakable(expected) == expected


def test_unclosed_markers_do_not_stall() -> None:
    text = "*" + "a " * 20_000 + "[" * 5_000 + "_x" * 5_000 + "` " * 5_000
    assert "a a a" in speakable(text)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://www.example.com/a?b=c", "example.com"),
        ("http://loja.exemplo.com.br", "loja.exemplo.com.br"),
        ("www.example.org/x", "example.org"),
        ("https://EXAMPLE.com:8443/", "example.com"),
    ],
)
def test_host_name(url: str, host: str) -> None:
    assert host_name(url) == host


def test_too_long_to_speak() -> None:
    assert MAX_SPOKEN_CHARS == 900
    assert not too_long_to_speak("Olá! Seu pedido chega amanhã.")
    assert not too_long_to_speak("a" * (MAX_SPOKEN_CHARS - 1) + ".")
    assert too_long_to_speak("a" * MAX_SPOKEN_CHARS + ".")
    assert too_long_to_speak("Frase curta.", max_chars=5)


def test_markup_and_links_do_not_count_as_speech() -> None:
    link = f"[loja](https://example.com/{'x' * 2_000})"
    assert not too_long_to_speak(f"**Veja** a {link}.")
