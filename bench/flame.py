"""Collapsed stacks (py-spy's `--format raw`): read them, sum them up, draw them as an SVG.

A line of py-spy's raw output is `frame;frame;...;frame count`, outermost frame first, each
frame `function (path)` (with `--nolineno`). `Stacks` keeps them; `top_self` and `by_package`
say where the samples end (the frame that was running), and `svg` draws the flame graph.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

Stack = tuple[str, ...]

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^()]*?)(?::\d+)?\)$")
_SITE = re.compile(r"(?:site|dist)-packages/(?P<package>[^/]+)")
_STDLIB = re.compile(r"/lib/python3\.\d+/(?P<module>[^/]+)")
ROOT = str(Path(__file__).resolve().parent.parent) + "/"  # the project's own files


@dataclass
class Stacks:
    """Sample counts per stack."""

    counts: Counter[Stack] = field(default_factory=Counter)

    @classmethod
    def read(cls, paths: Iterable[Path]) -> Stacks:
        stacks = cls()
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                frames, _, count = line.rpartition(" ")
                if frames and count.isdigit():
                    stacks.counts[tuple(frames.split(";"))] += int(count)
        return stacks

    def write(self, path: Path) -> None:
        lines = [f"{';'.join(stack)} {count}" for stack, count in self.counts.most_common()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def top_self(self, n: int) -> list[tuple[str, int]]:
        """The `n` frames most often running (the innermost frame of a sample)."""
        found: Counter[str] = Counter()
        for stack, count in self.counts.items():
            found[short(stack[-1])] += count
        return found.most_common(n)

    def by_package(self, n: int) -> list[tuple[str, int]]:
        """Samples by the package or module whose code was running (the innermost frame's)."""
        found: Counter[str] = Counter()
        for stack, count in self.counts.items():
            found[package(stack[-1])] += count
        return found.most_common(n)

    def inclusive(self, function: str) -> int:
        """Samples with `function` anywhere on the stack (its own time and its callees')."""
        return sum(
            count
            for stack, count in self.counts.items()
            if any(frame.startswith(function + " (") for frame in stack)
        )


def _split(frame: str) -> tuple[str, str]:
    matched = _FRAME.match(frame)
    return (matched["function"], matched["path"]) if matched else (frame, "")


def package(frame: str) -> str:
    """`starlette`, `sqlalchemy`, `logging` (the standard library's), `ours: main.py`..."""
    function, path = _split(frame)
    if function == "Runner.run" and path.endswith("asyncio/runners.py"):
        return "event loop (uvloop's C code under Runner.run: polling, I/O, callbacks)"
    site = _SITE.search(path)
    if site:
        return site["package"].removesuffix(".py")
    stdlib = _STDLIB.search(path)
    if stdlib:
        return stdlib["module"].removesuffix(".py")
    if not path:
        return "native or unknown"
    return f"ours: {path.removeprefix(ROOT)}"


def short(frame: str) -> str:
    """`function (package/module.py)`: the path cut after site-packages or the stdlib."""
    function, path = _split(frame)
    path = path.removeprefix(ROOT)
    for pattern in (r".*(?:site|dist)-packages/", r".*/lib/python3\.\d+/"):
        path = re.sub(pattern, "", path)
    return f"{function} ({path})" if path else function


# ---------------------------------------------------------------------------------------------
# The flame graph


@dataclass
class _Node:
    name: str
    count: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(stacks: Stacks) -> _Node:
    root = _Node("all")
    for stack, count in stacks.counts.items():
        node = root
        node.count += count
        for frame in stack:
            node = node.children.setdefault(frame, _Node(frame))
            node.count += count
    return root


def _colour(name: str) -> str:
    kind = package(name)
    if kind.startswith("ours"):
        return "rgb(120,190,120)"  # the project's own code: green
    seed = sum(kind.encode()) % 60
    return f"rgb({205 + seed // 2},{90 + seed},{50})"


def svg(stacks: Stacks, title: str, width: int = 1200, row: int = 16) -> str:
    """A flame graph: the outermost frame at the bottom, each bar as wide as its samples;
    hovering a bar shows its function, file and share of the samples."""
    root = _tree(stacks)
    total = max(root.count, 1)
    bars: list[tuple[int, float, float, _Node]] = []  # depth, x, width, node

    def place(node: _Node, depth: int, x: float) -> int:
        deepest = depth
        for child in sorted(node.children.values(), key=lambda c: c.name):
            w = child.count / total * width
            if w >= 0.3:
                bars.append((depth, x, w, child))
                deepest = max(deepest, place(child, depth + 1, x))
            x += w
        return deepest

    bars.append((0, 0.0, float(width), root))
    depth = place(root, 1, 0.0)
    height = (depth + 2) * row + 30
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="monospace" font-size="11">'
        ),
        f'<text x="4" y="16" font-size="14">{html.escape(title)}</text>',
    ]
    for level, x, w, node in bars:
        y = height - (level + 1) * row
        label = short(node.name)
        share = node.count / total * 100
        out.append(
            f"<g><title>{html.escape(label)} ({node.count} samples, {share:.2f}%)</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" '
            f'fill="{_colour(node.name)}"/>'
        )
        chars = int(w / 7)
        if chars >= 4:
            text = label if len(label) <= chars else label[: chars - 2] + ".."
            out.append(f'<text x="{x + 2:.1f}" y="{y + row - 4}">{html.escape(text)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
