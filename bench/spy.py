"""py-spy on the service's processes: recording them with their CPU, and the table of where
the time goes that `make profile` writes into bench/RESULTS.md."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import servers
from bench.flame import Stacks
from bench.report import machine, was_quiet

RESULTS = servers.ROOT / "bench" / "RESULTS.md"
RATE = 200  # py-spy samples per second
TOP = 12


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: make .venv/.dev (requirements-dev.txt)")
    return found


def process_cpu(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Recording:
    """One process sampled by py-spy, and its CPU over the same span."""

    name: str
    pid: int
    raw: Path
    popen: subprocess.Popen[bytes]
    cpu_before: float
    cpu: float = 0.0

    @classmethod
    def start(cls, name: str, pid: int, out: Path) -> Recording:
        raw = out / f"{name}.txt"
        popen = subprocess.Popen(  # noqa: S603 - py-spy from our venv, fixed arguments
            [
                py_spy(),
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(RATE),
                "--format",
                "raw",
                "--nolineno",
                "--full-filenames",
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return cls(name, pid, raw, popen, process_cpu(pid))

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.cpu = process_cpu(self.pid) - self.cpu_before
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
        try:
            _, err = self.popen.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            _, err = self.popen.communicate()
        if not self.raw.exists():
            raise RuntimeError(f"py-spy wrote nothing for {self.name}: {err.decode()[-500:]}")


@dataclass
class Profile:
    """A process (or several alike) under one load: stacks, CPU, and what it was per unit."""

    name: str
    title: str
    stacks: Stacks
    cpu: float
    units: int
    unit: str


@contextlib.contextmanager
def recording(names_pids: list[tuple[str, int]], out: Path) -> Iterator[list[Recording]]:
    recordings = [Recording.start(name, pid, out) for name, pid in names_pids]
    time.sleep(0.5)  # py-spy attached before the load starts
    try:
        yield recordings
    finally:
        for rec in recordings:
            rec.stop()


def table_lines(profile: Profile) -> list[str]:
    stacks = profile.stacks
    total = max(stacks.total, 1)
    per_unit = profile.cpu / max(profile.units, 1)
    lines = [
        (
            f"**{profile.title}**: {profile.cpu:.2f} s CPU over {profile.units} {profile.unit}s, "
            f"**{per_unit * 1000:.3f} ms per {profile.unit}**; {stacks.total} samples "
            f"([flame graph](profiles/{profile.name}.svg))."
        ),
        "",
        "| running (innermost frame) | share | µs per " + profile.unit.split(" ")[0] + " |",
        "| --- | --- | --- |",
    ]
    for frame, samples in stacks.top_self(TOP):
        share = samples / total
        frame_md = frame.replace("|", "\\|")
        lines.append(f"| `{frame_md}` | {share:.1%} | {share * per_unit * 1e6:.0f} |")
    lines += [
        "",
        "| package running | share | µs per " + profile.unit.split(" ")[0] + " |",
        "| --- | --- | --- |",
    ]
    for name, samples in stacks.by_package(TOP):
        share = samples / total
        lines.append(f"| {name} | {share:.1%} | {share * per_unit * 1e6:.0f} |")
    return [*lines, ""]


def write_results(label: str, profiles: list[Profile], background: str, seconds: float) -> None:
    facts = dict(machine(background))
    block = [
        f"<!-- profile:{label} -->",
        f"### Profile: {label}",
        "",
        (
            f"`python -m bench.profile --label {label}` (make profile) at commit "
            f"{facts['Commit']}, {seconds:.0f} s per load, py-spy {RATE} Hz. "
            "Background load before the run: "
            f"{background}. "
            + (
                "Compare CPU per unit only with a run of the same day."
                if was_quiet(background)
                else "**Figures taken on a shared, busy machine: re-measure on a quiet one; "
                "compare shares, and CPU per unit only with a run of the same day.**"
            )
        ),
        "",
    ]
    for profile in profiles:
        block += table_lines(profile)
    block.append(f"<!-- /profile:{label} -->")
    text = RESULTS.read_text(encoding="utf-8")
    pattern = re.compile(
        rf"<!-- profile:{re.escape(label)} -->.*?<!-- /profile:{re.escape(label)} -->\n?", re.S
    )
    new = "\n".join(block) + "\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: new, text)
    else:
        text = text.rstrip() + "\n\n" + new
    RESULTS.write_text(text, encoding="utf-8")
