"""Run the benchmarks and write the table: `python -m bench [--quick] [--duration S] [--out PATH]`.

1. Webhook acknowledgement: the service beside a bare FastAPI endpoint, closed and open loop.
2. End to end: 100 messages/s from 500 users against fake Graph and Gemini (2 s per answer).
3. Cost: prompt size sent to Gemini for message #20 and #200 of one conversation.
4. Memory: 1,000 answers in flight at once.
5. CPU per message: each part of answering one message, beside the same work done by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench import servers
from bench.ack import acknowledgement
from bench.budget import budget
from bench.cost import cost
from bench.e2e import end_to_end
from bench.fake_client import Fake
from bench.memory import memory
from bench.plan import Plan
from bench.report import Row, Section, background_load, render

SECTIONS = {
    "ack": acknowledgement,
    "e2e": end_to_end,
    "cost": cost,
    "memory": memory,
    "budget": budget,
}


async def run(plan: Plan, only: list[str]) -> list[Section]:
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        with servers.fake_upstreams(workdir, plan.gemini_delay) as process:
            async with httpx.AsyncClient() as client:
                fake = Fake(process, client)
                for name in only:
                    began = time.monotonic()
                    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
                    try:
                        sections.append(await SECTIONS[name](plan, workdir, fake))
                    except Exception as exc:  # one broken section must not lose the others
                        print(f"[bench] {name} failed: {exc!r}", file=sys.stderr, flush=True)
                        failed = Section(name)
                        failed.rows.append(
                            Row(
                                "section failed",
                                "",
                                f"{type(exc).__name__}: {exc}",
                                "",
                                "",
                                "**failed**",
                            )
                        )
                        sections.append(failed)
                        await fake.reset(delay=0.0)
                    print(
                        f"[bench] {name} done in {time.monotonic() - began:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    return sections


@contextlib.contextmanager
def event_loop() -> Iterator[asyncio.Runner]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        with asyncio.Runner() as runner:
            yield runner
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        yield runner


KEPT_NOTES = "<!-- Notes below this line are kept when the benchmark rewrites this file. -->"


def kept_notes(path: Path) -> str:
    """The hand-written notes at the end of an earlier results file (figures behind design
    choices that the code's comments point to), carried over to the new one."""
    try:
        earlier = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    _, marker, notes = earlier.partition(KEPT_NOTES)
    return "\n" + marker + notes if marker else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (about a minute)")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of the end-to-end load (default 60, 5 with --quick)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the Markdown (default: bench/RESULTS.md after a full run of every "
        "section; --quick and --only runs are only printed)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, of {','.join(SECTIONS)}",
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    if args.duration is not None and not 1 <= args.duration <= 600:
        parser.error("--duration must be between 1 and 600 seconds")
    plan = Plan.make(args.quick, args.duration)
    background = background_load()
    began = time.monotonic()
    with event_loop() as runner:
        sections = runner.run(run(plan, only))
    command = "python -m bench" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    markdown = render(
        sections,
        command=command,
        elapsed=time.monotonic() - began,
        quick=plan.quick,
        background=background,
    )
    print(markdown)
    complete = not plan.quick and set(only) == set(SECTIONS)
    out = args.out or (servers.ROOT / "bench" / "RESULTS.md" if complete else None)
    if out is not None:
        out.write_text(markdown + kept_notes(out), encoding="utf-8")
        print(f"[bench] written to {out}", file=sys.stderr)
    return 0
