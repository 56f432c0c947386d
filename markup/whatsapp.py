"""Convert Gemini Markdown to WhatsApp formatting and split long replies into parts."""

import bisect
import re
from collections.abc import Callable

from markup.markdown import PLACEHOLDER, TABLE_ROW, TABLE_SEPARATOR, emphasis

# Private-use characters, like markdown.PLACEHOLDER: they never occur in model output.
_BOLD = "\ue002"
_ITALIC = "\ue003"

_FENCE_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})([^`]*)$")
_FENCE_LINE = re.compile(r"^[ \t]*(?:`{3,}[^`\n]*|~{3,}.*)$", re.MULTILINE)
_HORIZONTAL_RULE = re.compile(r"^[ \t]{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_BULLET = re.compile(r"^([ \t]*)[*+-][ \t]+(?=\S)")

_CODE_OR_ESCAPE = re.compile(r"(`+).+?\1|\\[\\*_~`]")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
# Label caps keep stray brackets from making long lines quadratic.
_IMAGE = re.compile(r"!\[([^\]]{0,500})\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]]{1,500})\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# Trailing punctuation is left out so a URL ending a sentence or an emphasis still closes it.
_BARE_URL = re.compile(r"https?://[^\s<>*`\ue000-\ue003]*[^\s<>*`_~.,;:!?)'\"\ue000-\ue003]")

_SENTENCE_ENDS = (". ", "! ", "? ", "。", "！", "？", "। ", "؟ ")
_BOUNDARY_KINDS = (("\n\n",), ("\n",), _SENTENCE_ENDS, (" ", "\t"))


_BOLD_ITALIC = (emphasis("*", 3), emphasis("_", 3))
_STRONG = (emphasis("*", 2), emphasis("_", 2))
_EMPHASIS = (emphasis("*", 1), emphasis("_", 1))
_STRIKE = emphasis("~", 2)


def _link(label: str, url: str, protect: Callable[[str], str]) -> str:
    if not label or label == url:
        return protect(url)
    return f"{label} ({protect(url)})"


def _convert_inline(text: str, in_heading: bool = False) -> str:
    protected: list[str] = []

    def protect(fragment: str) -> str:
        protected.append(fragment)
        return f"\ue000{len(protected) - 1}\ue001"

    text = _CODE_OR_ESCAPE.sub(lambda m: protect(m.group()), text)
    text = _AUTOLINK.sub(lambda m: protect(m.group(1)), text)
    text = _IMAGE.sub(lambda m: _link(m.group(1), m.group(2), protect), text)
    text = _LINK.sub(lambda m: _link(m.group(1), m.group(2), protect), text)
    text = _BARE_URL.sub(lambda m: protect(m.group()), text)
    # A heading is already rendered bold as a whole, so inner bold would only add noise.
    bold = "" if in_heading else _BOLD
    for pattern in _BOLD_ITALIC:
        text = pattern.sub(lambda m: f"{bold}{_ITALIC}{m.group(1)}{_ITALIC}{bold}", text)
    for pattern in _STRONG:
        text = pattern.sub(lambda m: f"{bold}{m.group(1)}{bold}", text)
    for pattern in _EMPHASIS:
        text = pattern.sub(lambda m: f"{_ITALIC}{m.group(1)}{_ITALIC}", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = text.replace(_BOLD, "*").replace(_ITALIC, "_")
    return PLACEHOLDER.sub(lambda m: protected[int(m.group(1))], text)


def _convert_table_row(line: str) -> str:
    cells = line.strip()[1:-1].split("|")
    return _convert_inline(" | ".join(cell.strip() for cell in cells))


def _convert_line(line: str) -> str:
    if _HORIZONTAL_RULE.match(line):
        return ""
    heading = _HEADING.match(line)
    if heading:
        title = _convert_inline(heading.group(1) or "", in_heading=True)
        return f"*{title}*" if title else ""
    return _convert_inline(_BULLET.sub(r"\1- ", line))


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def markdown_to_whatsapp(text: str) -> str:
    """Rewrite Markdown as WhatsApp markup, leaving code blocks and inline code verbatim."""
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    fence = ""
    in_table = previous_blank = False
    for index, line in enumerate(lines):
        if fence:
            closing = line.strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                fence = ""
                line = _indent(line) + "```"
            out.append(line)
            previous_blank = False
            continue
        opening = _FENCE_OPEN.match(line)
        next_line = lines[index + 1] if index + 1 < len(lines) else ""
        if opening:
            fence = opening.group(2)
            converted = opening.group(1) + "```"
        elif in_table and TABLE_SEPARATOR.match(line):
            continue
        elif TABLE_ROW.match(line) and (in_table or TABLE_SEPARATOR.match(next_line)):
            in_table = True
            converted = _convert_table_row(line)
        else:
            in_table = False
            converted = _convert_line(line)
        blank = not converted.strip()
        if blank and previous_blank:
            continue
        previous_blank = blank
        out.append("" if blank else converted)
    return "\n".join(out).rstrip()


def _fence_spans(text: str) -> list[tuple[int, int]]:
    """Return (start, end) offsets of fenced code blocks, closing fence line included."""
    starts = [m.start() for m in _FENCE_LINE.finditer(text)]
    closes = [*starts[1::2], len(text)]
    spans = []
    for opening, closing in zip(starts[::2], closes, strict=False):
        line_end = text.find("\n", closing)
        spans.append((opening, len(text) if line_end == -1 else line_end + 1))
    return spans


def _inside_span(cut: int, spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    index = bisect.bisect_left(spans, cut, key=lambda span: span[0]) - 1
    if index >= 0 and cut < spans[index][1]:
        return spans[index]
    return None


def _last_cut(
    text: str,
    start: int,
    end: int,
    separators: tuple[str, ...],
    spans: list[tuple[int, int]],
) -> int:
    """Latest cut just after a separator in text[start:end] that is not inside a code block."""
    best = -1
    for separator in separators:
        stop = end
        while (found := text.rfind(separator, start, stop)) != -1:
            cut = found + len(separator)
            span = _inside_span(cut, spans)
            if span is None:
                best = max(best, cut)
                break
            stop = span[0]
    return best


def _best_cut(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> int:
    for separators in _BOUNDARY_KINDS:
        cut = _last_cut(text, start, end, separators, spans)
        if cut != -1:
            return cut
    return -1


def split_message(text: str, limit: int = 4096) -> list[str]:
    """Split text into parts of at most limit characters that join back to exactly text."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    spans = _fence_spans(text)
    parts: list[str] = []
    start = 0
    while len(text) - start > limit:
        end = start + limit
        cut = _best_cut(text, start, end, spans)
        if cut == -1:
            # A code block longer than the limit has to be cut inside; the next fallback is hard.
            cut = _best_cut(text, start, end, [])
        if cut == -1:
            cut = end
        parts.append(text[start:cut])
        start = cut
    if start < len(text):
        parts.append(text[start:])
    return parts
