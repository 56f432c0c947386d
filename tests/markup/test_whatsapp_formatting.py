"""Tests for Markdown-to-WhatsApp conversion and long-message splitting."""

import random

import pytest

from markup.whatsapp import markdown_to_whatsapp, split_message


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        # Bold, italic, strike.
        ("**bold**", "*bold*"),
        ("__bold__", "*bold*"),
        ("*italic*", "_italic_"),
        ("_italic_", "_italic_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        ("a **b** c *d* e", "a *b* c _d_ e"),
        (
            "**bold** and *italic* and __b__ and _i_",
            "*bold* and _italic_ and *b* and _i_",
        ),
        ("**bold with *italic* inside**", "*bold with _italic_ inside*"),
        ("**one** **two**", "*one* *two*"),
        # Headings.
        ("# Title", "*Title*"),
        ("## Sub title", "*Sub title*"),
        ("### Level 3", "*Level 3*"),
        ("###### Level 6", "*Level 6*"),
        ("## **Already bold**", "*Already bold*"),
        ("# Closing hashes ##", "*Closing hashes*"),
        ("# Mixed *italic* part", "*Mixed _italic_ part*"),
        ("#hashtag", "#hashtag"),
        ("####### seven", "####### seven"),
        # Links and images.
        ("[Google](https://google.com)", "Google (https://google.com)"),
        ("[https://a.com](https://a.com)", "https://a.com"),
        ("see [docs](https://x.io/a_b_c) now", "see docs (https://x.io/a_b_c) now"),
        ("![a cat](https://img.io/cat.png)", "a cat (https://img.io/cat.png)"),
        ("<https://auto.link/x_y_z>", "https://auto.link/x_y_z"),
        ("**[bold link](https://b.com)**", "*bold link (https://b.com)*"),
        # Bullets and numbered lists.
        ("* item", "- item"),
        ("+ item", "- item"),
        ("- item", "- item"),
        ("* a\n  * b\n    + c", "- a\n  - b\n    - c"),
        ("* **bold** item", "- *bold* item"),
        ("1. one\n2. two\n10. ten", "1. one\n2. two\n10. ten"),
        ("1. **First** step", "1. *First* step"),
        # Horizontal rules.
        ("a\n\n---\n\nb", "a\n\nb"),
        ("a\n***\nb", "a\n\nb"),
        ("a\n___\nb", "a\n\nb"),
        ("a\n* * *\nb", "a\n\nb"),
        # Inline code is verbatim.
        ("`a**b**c`", "`a**b**c`"),
        ("`snake_case_name`", "`snake_case_name`"),
        ("use `[a](b)` and **x**", "use `[a](b)` and *x*"),
        ("**call `f(*args)`**", "*call `f(*args)`*"),
        # Things that only look like emphasis.
        ("snake_case_name", "snake_case_name"),
        ("file_name_here and other_name", "file_name_here and other_name"),
        ("2*3*4", "2*3*4"),
        ("2**3**4 = 4096", "2**3**4 = 4096"),
        ("a * b * c", "a * b * c"),
        ("https://example.com/a_b_c", "https://example.com/a_b_c"),
        ("go to https://ex.com/_x_/y_z_ now", "go to https://ex.com/_x_/y_z_ now"),
        ("_see https://ex.com/a_", "_see https://ex.com/a_"),
        (r"\*not italic\*", r"\*not italic\*"),
        # Blockquotes.
        ("> quoted", "> quoted"),
        ("> **quoted** text", "> *quoted* text"),
        # Blank lines and trailing whitespace.
        ("a\n\n\n\nb", "a\n\nb"),
        ("a\n\n\nb", "a\n\nb"),
        ("a\n  \n \n\nb", "a\n\nb"),
        ("a\n\nb", "a\n\nb"),
        ("text   \n\n\n", "text"),
        ("", ""),
        # Everything else untouched.
        ("Привет, мир! 😀", "Привет, мир! 😀"),
        ("こんにちは世界。مرحبا بالعالم", "こんにちは世界。مرحبا بالعالم"),
        ("**жирный** и _курсив_", "*жирный* и _курсив_"),
        ("plain text, nothing to do.", "plain text, nothing to do."),
        ("a\r\nb", "a\nb"),
    ],
)
def test_markdown_to_whatsapp(markdown: str, expected: str) -> None:
    assert markdown_to_whatsapp(markdown) == expected


def test_fenced_code_block_is_kept_verbatim_without_language() -> None:
    markdown = (
        "Intro **x**\n"
        "```python\n"
        "**x** and __y__ and *z*\n"
        "# not heading\n"
        "[a](b)\n"
        "* not a bullet\n"
        "| a | b |\n"
        "|---|---|\n"
        "\n\n\n\n"
        "---\n"
        "```\n"
        "Outro *y*"
    )
    expected = (
        "Intro *x*\n"
        "```\n"
        "**x** and __y__ and *z*\n"
        "# not heading\n"
        "[a](b)\n"
        "* not a bullet\n"
        "| a | b |\n"
        "|---|---|\n"
        "\n\n\n\n"
        "---\n"
        "```\n"
        "Outro _y_"
    )
    assert markdown_to_whatsapp(markdown) == expected


def test_tilde_fence_becomes_backtick_fence() -> None:
    assert markdown_to_whatsapp("~~~\n~~x~~\n~~~") == "```\n~~x~~\n```"


def test_table_drops_separator_and_outer_pipes() -> None:
    markdown = "Results:\n| Name | Score |\n|:-----|------:|\n| **Ann** | 10 |\n| Bob | 7 |\n\nDone"
    expected = "Results:\nName | Score\n*Ann* | 10\nBob | 7\n\nDone"
    assert markdown_to_whatsapp(markdown) == expected


def test_pipe_lines_without_separator_are_not_a_table() -> None:
    assert markdown_to_whatsapp("| just | pipes |") == "| just | pipes |"


def test_full_answer() -> None:
    markdown = (
        "## Summary\n\n"
        "Here is **the plan**:\n\n"
        "* Read the `config_file.yaml`\n"
        "* Visit [the site](https://example.com/some_path)\n\n\n\n"
        "---\n\n"
        "> Note: ~~old~~ new\n"
    )
    expected = (
        "*Summary*\n\n"
        "Here is *the plan*:\n\n"
        "- Read the `config_file.yaml`\n"
        "- Visit the site (https://example.com/some_path)\n\n"
        "> Note: ~old~ new"
    )
    assert markdown_to_whatsapp(markdown) == expected


def _check_invariants(text: str, parts: list[str], limit: int) -> None:
    assert "".join(parts) == text
    assert all(parts)
    assert all(len(part) <= limit for part in parts)


def test_split_empty_text() -> None:
    assert split_message("") == []


@pytest.mark.parametrize("text", ["hi", "x" * 4096, "a\n\nb"])
def test_split_short_text_is_one_part(text: str) -> None:
    assert split_message(text) == [text]


def test_split_paragraphs_cut_on_paragraph_boundaries() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * (20 + i % 30) for i in range(120)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    assert len(text) > 10_000
    parts = split_message(text)
    _check_invariants(text, parts, 4096)
    assert len(parts) > 2
    for part in parts[:-1]:
        assert part.endswith("\n\n")
    for part in parts[1:]:
        assert part.startswith("Paragraph ")
    # Order is kept: paragraph numbers increase across parts.
    numbers = [int(part.split()[1].rstrip(".")) for part in parts]
    assert numbers == sorted(numbers)


def test_split_prefers_latest_paragraph_boundary() -> None:
    text = "a" * 10 + "\n\n" + "b" * 10 + "\n\n" + "c" * 10
    assert split_message(text, limit=30) == [
        "a" * 10 + "\n\n" + "b" * 10 + "\n\n",
        "c" * 10,
    ]


def test_split_single_paragraph_cuts_after_sentences() -> None:
    text = " ".join(f"This is sentence number {i} of the text." for i in range(400))
    assert len(text) > 10_000
    parts = split_message(text)
    _check_invariants(text, parts, 4096)
    for part in parts[:-1]:
        assert part.endswith(". ")


def test_split_single_sentence_cuts_at_spaces() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    parts = split_message(text)
    _check_invariants(text, parts, 4096)
    assert len(parts) > 1
    for part in parts[:-1]:
        assert part.endswith(" ")
        assert len(part) > 4000


def test_split_without_spaces_cuts_hard() -> None:
    text = "x" * 10_000
    parts = split_message(text)
    assert [len(part) for part in parts] == [4096, 4096, 1808]
    assert "".join(parts) == text


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("one two three", 8, ["one two ", "three"]),
        ("Hi there. How are you? Fine!", 15, ["Hi there. ", "How are you? ", "Fine!"]),
        ("line one\nline two\nline three", 20, ["line one\nline two\n", "line three"]),
        (
            "para one\n\nline two\nline three",
            25,
            ["para one\n\n", "line two\nline three"],
        ),
        ("abcdefgh", 3, ["abc", "def", "gh"]),
        ("abc", 1, ["a", "b", "c"]),
        ("abc", 3, ["abc"]),
        ("你好。世界。再见。", 4, ["你好。", "世界。", "再见。"]),
        ("a b", 2, ["a ", "b"]),
    ],
)
def test_split_small_limits(text: str, limit: int, expected: list[str]) -> None:
    assert split_message(text, limit) == expected


def test_split_avoids_cutting_inside_code_block() -> None:
    text = "Intro line.\n```\nline a\n\nline b\n```\nEnd"
    parts = split_message(text, limit=30)
    _check_invariants(text, parts, 30)
    assert parts[0] == "Intro line.\n"


def test_split_cuts_inside_code_block_longer_than_limit() -> None:
    text = "```\n" + "code line\n" * 10 + "```"
    parts = split_message(text, limit=25)
    _check_invariants(text, parts, 25)
    assert all(part.endswith("\n") for part in parts[:-1])


def test_split_rejects_non_positive_limit() -> None:
    with pytest.raises(ValueError):
        split_message("abc", 0)


def test_split_large_text_is_fast_enough() -> None:
    text = ("word " * 50 + "\n") * 400 + "x" * 50_000
    parts = split_message(text)
    _check_invariants(text, parts, 4096)


@pytest.mark.parametrize("seed", range(300))
def test_split_random_texts_keep_invariants(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "abcdefg     \n\n..!?```。"
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
    limit = rng.randint(1, 50)
    parts = split_message(text, limit)
    _check_invariants(text, parts, limit)
    if len(text) <= limit:
        assert parts == ([text] if text else [])
