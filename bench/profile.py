"""Where the time goes: py-spy on the service under the bench's load (`make profile`).

`python -m bench.profile [--label NAME] [--seconds S] [--only web,answering,parts]` records:

- web: the web process (uvicorn) and one worker process while 50 keep-alive connections post
  signed webhooks as fast as they are answered (section 1's closed loop);
- answering: the web process and every worker process while 100 webhooks/s are posted and
  answered through a fake Gemini that takes 2 s (section 2's load), for S seconds, then until
  every answer is sent;
- parts: each part of section 5 (a Graph call, a Gemini call with 20 turns of history, one
  message's database work on SQLite), one child process each, 100 calls/s.

It writes one flame graph (SVG) per process and load to bench/profiles/ (`<label>-<name>.svg`,
the raw stacks beside it as `.txt`) and a table of the top frames, per webhook or per answered
message, into bench/RESULTS.md's notes under `### Profile: <label>` (replacing that label's
earlier table, keeping every other). The CPU figures are the processes' own (utime + stime from
/proc over the recording); a frame's share of the samples apportions them.

py-spy reads the other processes' memory: it needs ptrace rights over them (root, or
CAP_SYS_PTRACE, or the same user with kernel.yama.ptrace_scope = 0; in a container
`--cap-add SYS_PTRACE`). While it samples (200 Hz here) it pauses the process for a moment each
time, so the service runs a little slower than in `make bench`: compare profiles with profiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bench import servers
from bench.fake_client import Fake
from bench.flame import Stacks, svg
from bench.load import closed_loop, open_loop, webhooks
from bench.plan import Plan
from bench.proc import process_tree, usable_cpus
from bench.report import background_load
from bench.spy import RATE, RESULTS, Profile, py_spy, recording, table_lines, write_results

if TYPE_CHECKING:
    from bench.replay import Captured

PROFILES = servers.ROOT / "bench" / "profiles"


async def web_load(
    plan: Plan, workdir: Path, fake: Fake, seconds: float, out: Path
) -> list[Profile]:
    """Section 1's closed loop; the web process and one worker process."""
    await fake.reset(delay=plan.gemini_delay)
    settings = plan.service_settings()
    with servers.service(workdir / "profile-web", fake.process.url, **settings) as svc:
        web, worker = process_tree(svc.pid)[:2]
        with recording([("web-closed-loop", web), ("worker-closed-loop", worker)], out) as recs:
            result = await closed_loop(
                svc.port,
                webhooks(svc.port, "profile-web", plan.senders),
                connections=plan.connections,
                duration=seconds,
                max_requests=200_000,
            )
    answered = (await fake.stats())["sent"]
    rate = result.rate
    return [
        Profile(
            "web-closed-loop",
            f"web process, closed loop ({rate:.0f} webhooks/s)",
            Stacks.read([recs[0].raw]),
            recs[0].cpu,
            result.completed,
            "webhook",
        ),
        Profile(
            "worker-closed-loop",
            f"one worker process of {plan.worker_processes}, closed loop (backlog of answers)",
            Stacks.read([recs[1].raw]),
            recs[1].cpu,
            max(1, answered // plan.worker_processes),
            "answered message (its share)",
        ),
    ]


async def answering_load(
    plan: Plan, workdir: Path, fake: Fake, seconds: float, out: Path
) -> list[Profile]:
    """Section 2's load: 100 webhooks/s answered through a 2 s Gemini; web and every worker."""
    await fake.reset(delay=plan.gemini_delay)
    settings = plan.service_settings()
    with servers.service(workdir / "profile-answering", fake.process.url, **settings) as svc:
        tree = process_tree(svc.pid)
        names = [("web-answering", tree[0])]
        names += [(f"worker{k}-answering", pid) for k, pid in enumerate(tree[1:])]
        with recording(names, out) as recs:
            result = await open_loop(
                svc.port,
                webhooks(svc.port, "profile-e2e", plan.e2e_users),
                rate=plan.e2e_rate,
                duration=seconds,
            )
            answered = await fake.wait_sent(result.completed, plan.gemini_delay + 30)
    workers = recs[1:]
    return [
        Profile(
            "web-answering",
            f"web process, {plan.e2e_rate} webhooks/s answered",
            Stacks.read([recs[0].raw]),
            recs[0].cpu,
            result.completed,
            "webhook",
        ),
        Profile(
            "workers-answering",
            f"{len(workers)} worker processes together, {plan.e2e_rate} messages/s answered",
            Stacks.read([rec.raw for rec in workers]),
            sum(rec.cpu for rec in workers),
            answered,
            "answered message",
        ),
    ]


PARTS = ("graph", "gemini", "database")


def parts_load(fake_url: str, count: int, workdir: Path) -> list[Profile]:
    """Each part of section 5 in a child process of its own, under py-spy from its start."""
    profiles = []
    for part in PARTS:
        raw = workdir / f"part-{part}.txt"
        report = workdir / f"part-{part}.json"
        command = [py_spy(), "record", "--rate", str(RATE), "--format", "raw", "--nolineno"]
        command += ["--full-filenames"]
        command += ["--output", str(raw), "--", sys.executable, "-m", "bench.profile"]
        command += ["--part", part, "--fake-url", fake_url, "--count", str(count)]
        command += ["--report", str(report)]
        if part == "database":  # what to make again, captured here: not profiled
            command += ["--capture", str(capture_database(workdir, count))]
        subprocess.run(command, check=True, cwd=servers.ROOT, stdout=subprocess.DEVNULL)  # noqa: S603
        measured = json.loads(report.read_text())
        stacks = Stacks.read([raw])
        # only the calls (warm-up included) and the database thread's work for them: start-up
        # and imports are left out of the table
        kept = Stacks()
        for stack, samples in stacks.counts.items():
            if any("measured_call (" in f or "_connection_worker_thread (" in f for f in stack):
                kept.counts[stack] += samples
        profiles.append(
            Profile(
                f"part-{part}",
                f"section 5: {part} ({measured['per_call'] * 1000:.2f} ms CPU per call)",
                kept,
                measured["per_call"] * count,
                count,
                "call",
            )
        )
    return profiles


def capture_database(workdir: Path, count: int) -> Path:
    """Section 5's database part, its first pass: the store calls the answering side makes for
    each message, captured (bench.replay.capture) into a file for the child process to make
    again under py-spy."""
    from bench import replay

    empty, captured = asyncio.run(replay.capture(workdir, count))
    path = workdir / "part-database.pickle"
    path.write_bytes(pickle.dumps((empty, captured)))
    return path


# ---------------------------------------------------------------------------------------------
# A part of section 5 on its own (the child process of `parts_load`)


async def run_part(
    part: str, fake_url: str, count: int, captured: tuple[Path, Captured] | None = None
) -> float:
    from pydantic import SecretStr

    from bench import budget, replay
    from bench.proc import paced_cpu
    from domain.types import Role, Turn
    from llm import Gemini, close_gemini_http, gemini_aiohttp_session
    from storage.store import Store
    from whatsapp import GraphClient, graph_http_client

    rate = 100.0
    if part == "graph":
        http = graph_http_client(fake_url, 10.0)
        graph = GraphClient(
            http,
            version=budget.GRAPH_VERSION,
            phone_number_id=servers.PHONE_NUMBER_ID,
            token=SecretStr(servers.WHATSAPP_TOKEN),
        )

        async def measured_call(k: int) -> None:
            await graph.mark_read(f"wamid.profile-{k}")

        try:
            return await paced_cpu(measured_call, count, rate)
        finally:
            await http.aclose()
    if part == "gemini":
        session = gemini_aiohttp_session(30.0, 16)
        gemini = Gemini(
            api_key=servers.GEMINI_API_KEY, model=budget.MODEL, http=session, base_url=fake_url
        )
        history = [Turn(Role(t.role), t.text) for t in budget.HISTORY]

        async def measured_call(k: int) -> None:
            await gemini.generate(
                budget.SYSTEM_PROMPT, history, f"Question {k}?", max_output_tokens=800
            )

        try:
            return await paced_cpu(measured_call, count, rate)
        finally:
            await gemini.aclose()
            await close_gemini_http(session)
    assert captured is not None, "--capture: the database part's first pass"
    empty, calls = captured
    with tempfile.TemporaryDirectory(prefix="profile-db-") as tmp:
        store = await Store.open(f"sqlite:///{shutil.copyfile(empty, Path(tmp) / 'profile.db')}")

        async def measured_call(k: int) -> None:
            await replay.replay_message(store, calls, k, count)

        try:
            return await paced_cpu(measured_call, count, rate)
        finally:
            await store.close()


async def profile_service(plan: Plan, only: list[str], seconds: float) -> list[Profile]:
    profiles: list[Profile] = []
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        workdir = Path(tmp)
        with servers.fake_upstreams(workdir, plan.gemini_delay) as process:
            async with httpx.AsyncClient() as client:
                fake = Fake(process, client)
                if "web" in only:
                    print("[profile] web ...", file=sys.stderr, flush=True)
                    profiles += await web_load(plan, workdir, fake, seconds, workdir)
                if "answering" in only:
                    print("[profile] answering ...", file=sys.stderr, flush=True)
                    profiles += await answering_load(plan, workdir, fake, 2 * seconds, workdir)
                if "parts" in only:
                    print("[profile] parts ...", file=sys.stderr, flush=True)
                    await fake.reset(delay=0.0)
                    profiles += await asyncio.to_thread(parts_load, process.url, 500, workdir)
    return profiles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--label", default="now", help="names the files and the table")
    parser.add_argument("--seconds", type=float, default=10.0, help="closed-loop seconds")
    parser.add_argument("--only", default="web,answering,parts")
    parser.add_argument("--no-results", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--fake-url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=500, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--capture", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.label):
        parser.error("--label: letters, digits, '.', '_' and '-' only")
    if not 1 <= args.seconds <= 120:
        parser.error("--seconds must be between 1 and 120")
    from bench.budget import service_garbage_collector
    from bench.cli import event_loop

    if args.part:  # the child process of one part of section 5
        with service_garbage_collector(), event_loop() as runner:
            captured = None
            if args.capture:  # written by this bench's parent process a moment ago
                captured = pickle.loads(args.capture.read_bytes())  # noqa: S301
            per_call = runner.run(run_part(args.part, args.fake_url, args.count, captured))
        args.report.write_text(json.dumps({"per_call": per_call}))
        return 0
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    plan = Plan.make(False, None)
    out = PROFILES
    out.mkdir(parents=True, exist_ok=True)
    background = background_load()
    print(f"[profile] {usable_cpus()} usable CPUs; {background}", file=sys.stderr)
    with event_loop() as runner:
        profiles = runner.run(profile_service(plan, only, args.seconds))
    for profile in profiles:
        (out / f"{args.label}-{profile.name}.svg").write_text(
            svg(profile.stacks, f"{profile.title} [{args.label}]"), encoding="utf-8"
        )
        profile.stacks.write(out / f"{args.label}-{profile.name}.txt")
        print("\n".join(table_lines(profile)))
    for profile in profiles:  # links in the table point at the labelled files
        profile.name = f"{args.label}-{profile.name}"
    if not args.no_results:
        write_results(args.label, profiles, background, args.seconds)
        print(f"[profile] table written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
