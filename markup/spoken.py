"""Rewrite a Markdown answer as plain sentences that text-to-speech can read without symbols."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from markup.markdown import PLACEHOLDER, TABLE_ROW, TABLE_SEPARATOR, emphasis

# A speaking voice says about 15 characters a second (~150 words a minute of ~6 characters with
# the space, similar for Portuguese and Spanish), so 900 characters are about a minute of audio.
CHARS_PER_SECOND = 15
MAX_SPOKEN_CHARS = 60 * CHARS_PER_SECOND


_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_RULE = re.compile(r"^[ \t]{0,3}(?:([-*_=])[ \t]*)(?:\1[ \t]*){2,}$")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_QUOTE = re.compile(r"^[ \t]*(?:>[ \t]?)+")
_ITEM = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?")

_CODE_SPAN = re.compile(r"(`+)(.{1,500}?)\1")  # Capped like the labels below.
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~>])")
# Label caps keep stray brackets from making long lines quadratic.
_IMAGE = re.compile(r"!\[([^\]]{0,500})\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]]{0,500})\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_AUTOLINK = re.compile(r"<((?:https?://|www\.)[^>\s]+)>")
# Trailing punctuation is left out so a URL ending a sentence keeps the sentence's full stop.
_BARE_URL = re.compile(r"(?:https?://|www\.)[^\s<>()\[\]`]*[^\s<>()\[\]`.,;:!?'\"*_]")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_LEFTOVER_MARKERS = re.compile(r"\*{2,}|_{2,}|~{2,}")
# Emoji and pictographs, their modifiers and joiners, dingbats: TTS would read their names.
_SYMBOLS = re.compile(
    "[\U0001f000-\U0001faff\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff"
    "\ufe0e\ufe0f\u200d\u20e3\U000e0020-\U000e007f]"
)
# Arrows between steps ("Pedidos → Trocas") are a pause, not a word.
_ARROWS = re.compile("[\u2190-\u21ff\u27f0-\u27ff\u2900-\u297f]|(?<!\\S)(?:->|=>)(?!\\S)")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?…])(?=\s|$)")
_WHITESPACE = re.compile(r"\s+")
_CLOSERS = "\"')]}»”’"
_FINAL_PUNCTUATION = ".!?…:"


_EMPHASES = (
    *(emphasis(marker, count) for count in (3, 2, 1) for marker in "*_"),
    emphasis("~", 2),
)


def host_name(url: str) -> str:
    """The host a URL points to, without `www.`: what a person would say for the link."""
    parsed = urlsplit(url if "://" in url else f"http://{url}")
    host = parsed.hostname or url
    return host.removeprefix("www.")


def _inline(text: str) -> str:
    """Drop inline Markdown: code ticks, links to their labels, URLs to hosts, emphasis."""
    kept: list[str] = []

    def keep(fragment: str) -> str:
        kept.append(fragment)
        return f"\ue000{len(kept) - 1}\ue001"

    def label_or_host(match: re.Match[str]) -> str:
        label = match.group(1).strip()
        return label if label else keep(host_name(match.group(2)))

    text = _CODE_SPAN.sub(lambda m: keep(m.group(2).strip()), text)
    text = _ESCAPE.sub(lambda m: keep(m.group(1)), text)
    text = _HTML_BREAK.sub(" ", text)
    text = _IMAGE.sub(label_or_host, text)
    text = _LINK.sub(label_or_host, text)
    text = _AUTOLINK.sub(lambda m: keep(host_name(m.group(1))), text)
    text = _BARE_URL.sub(lambda m: keep(host_name(m.group())), text)
    for pattern in _EMPHASES:
        text = pattern.sub(r"\1", text)
    text = _LEFTOVER_MARKERS.sub("", text)
    return PLACEHOLDER.sub(lambda m: kept[int(m.group(1))], text)


def _sentence(text: str) -> str:
    """Tidy one spoken unit and end it with a full stop unless it already ends in punctuation."""
    text = _ARROWS.sub(", ", _SYMBOLS.sub(" ", text))
    text = _WHITESPACE.sub(" ", text).strip(" ,;")
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    if text and text.rstrip(_CLOSERS)[-1:] not in _FINAL_PUNCTUATION:
        text += "."
    return text


def _table_row(line: str) -> str:
    cells = (_inline(cell).strip() for cell in line.strip()[1:-1].split("|"))
    return ", ".join(cell for cell in cells if cell)


def _line(line: str) -> str:
    """One line outside code blocks, as the words to say."""
    if _RULE.match(line):
        return ""
    heading = _HEADING.match(line)
    if heading:
        return _inline(heading.group(1))
    line = _QUOTE.sub("", line)
    return _inline(_ITEM.sub("", line))


def _units(markdown: str) -> Iterator[str]:
    """Each line's words: headings, list items, table rows and paragraph lines alike."""
    fence = ""
    for line in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        opening = _FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = ""
            else:
                yield line  # Code is said as written, just without the fences.
        elif opening:
            fence = opening.group(1)
        elif TABLE_SEPARATOR.match(line):
            continue
        elif TABLE_ROW.match(line):
            yield _table_row(line)
        else:
            yield _line(line)


def speakable(markdown: str) -> str:
    """Markdown answer → one line of plain sentences in the same words and language.

    Emphasis markers go, headings, list items, table rows (cells joined by commas) and lines
    become sentences ending in punctuation, links become their labels, bare URLs their host
    names ("example.com"), code loses its backticks and fences but keeps its text, emoji and
    arrows are dropped, and whitespace collapses to single spaces.
    """
    sentences = (_sentence(unit) for unit in _units(markdown))
    return " ".join(sentence for sentence in sentences if sentence)


def too_long_to_speak(text: str, max_chars: int = MAX_SPOKEN_CHARS) -> bool:
    """True when the answer would take more than about a minute to say; send it as text then.

    Counts the characters that would be spoken (links and markup do not count). The default,
    900 characters, is about 60 s at ~15 characters a second: long enough for a typical answer,
    short enough that Gemini TTS does not drift on long text and a listener keeps track, and far
    under the ~2 minutes a 512 KB voice note holds at 32 kbit/s.
    """
    return len(speakable(text)) > max_chars
