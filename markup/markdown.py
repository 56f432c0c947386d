"""The pieces of Markdown both renderings recognise: emphasis runs, table rows, placeholders."""

from __future__ import annotations

import re

# Private-use characters never occur in model output, so they are safe placeholders.
PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")

TABLE_ROW = re.compile(r"^[ \t]*\|.*\|[ \t]*$")
TABLE_SEPARATOR = re.compile(r"^[ \t]*\|(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*$")


def emphasis(marker: str, count: int) -> re.Pattern[str]:
    """Match marker runs only at word boundaries so snake_case and 2*3*4 survive."""
    m = re.escape(marker)
    run = f"{m}{{{count}}}"
    # The span cap keeps unclosed markers from making long lines quadratic.
    return re.compile(rf"(?<![\w{m}]){run}(?=[^\s{m}])(.{{1,500}}?)(?<=[^\s{m}]){run}(?![\w{m}])")
