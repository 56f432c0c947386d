"""bench/flame.py: py-spy's collapsed stacks read, summed by frame and package, drawn as SVG."""

from __future__ import annotations

from pathlib import Path

from bench.flame import ROOT, Stacks, package, short, svg

SITE = "/work/x/.venv/lib/python3.11/site-packages"
MAIN = f"{ROOT}main.py"
RAW = (
    f"run (/usr/lib/python3.11/asyncio/runners.py);handle ({SITE}/starlette/routing.py);"
    f"receive_webhook ({MAIN}) 3\n"
    f"run (/usr/lib/python3.11/asyncio/runners.py);handle ({SITE}/starlette/routing.py) 1\n"
    "_connection_worker_thread (/work/x/.venv/lib/python3.11/site-packages/aiosqlite/core.py) 4\n"
    "not a line\n"
)


def test_stacks_are_summed_by_innermost_frame_and_package(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(RAW)
    stacks = Stacks.read([raw, tmp_path / "missing.txt"])
    assert stacks.total == 8
    assert stacks.top_self(2) == [
        ("_connection_worker_thread (aiosqlite/core.py)", 4),
        ("receive_webhook (main.py)", 3),
    ]
    assert dict(stacks.by_package(5)) == {"aiosqlite": 4, "ours: main.py": 3, "starlette": 1}
    assert stacks.inclusive("handle") == 4
    again = tmp_path / "again.txt"
    stacks.write(again)
    assert Stacks.read([again]).counts == stacks.counts


def test_frames_are_named_by_package() -> None:
    assert package("f (/usr/lib/python3.11/json/decoder.py)") == "json"
    assert package(f"f ({SITE}/sqlalchemy/engine/base.py)") == "sqlalchemy"
    assert package("Runner.run (/usr/lib/python3.11/asyncio/runners.py)").startswith("event loop")
    assert short(f"f ({SITE}/h11/_connection.py)") == "f (h11/_connection.py)"


def test_the_flame_graph_is_svg_with_one_bar_per_frame(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(RAW)
    drawn = svg(Stacks.read([raw]), "a <title>")
    assert drawn.startswith("<svg ") and drawn.rstrip().endswith("</svg>")
    assert "a &lt;title&gt;" in drawn
    assert drawn.count("<rect ") == 5  # all, run, handle, receive_webhook, the thread
    assert "receive_webhook (main.py) (3 samples, 37.50%)" in drawn
