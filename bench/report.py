"""The results as Markdown: a description of the machine, the summary table, the detail tables."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.proc import usable_cpus
from bench.servers import ROOT


@dataclass
class Row:
    """One figure: the baseline beside ours, their ratio, the target and whether it is met."""

    measure: str
    baseline: str
    ours: str
    ratio: str
    target: str = ""
    verdict: str = ""


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)
    details: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def ms(seconds: float) -> str:
    if math.isinf(seconds):
        return "unanswered"
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.2f} ms"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def mib_mb(kib: float) -> str:
    """KiB as MiB (2^20 bytes) and MB (10^6 bytes): the targets are in MB, /proc in KiB."""
    return f"{kib / 1024:.1f} MiB = {kib * 1024 / 1e6:.1f} MB"


def ratio(ours: float, baseline: float) -> str:
    if not (math.isfinite(ours) and math.isfinite(baseline)) or baseline == 0:
        return "n/a"
    return f"{ours / baseline:.2f}×"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_total() -> str:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - read-only, on PATH
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD"],  # noqa: S607 - read-only, on PATH
            cwd=ROOT,
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = result.stdout.strip() or "unknown"
    return commit + (" + uncommitted changes" if dirty.returncode == 1 else "")


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def background_load(seconds: float = 1.0) -> str:
    """How busy the machine is before the run starts: other work skews every figure."""
    try:
        busy0, total0 = _cpu_ticks()
        time.sleep(seconds)
        busy1, total1 = _cpu_ticks()
        with open("/proc/loadavg", encoding="ascii") as loadavg:
            load = " ".join(loadavg.read().split()[:3])
    except (OSError, ValueError, IndexError):
        return "unknown"
    share = (busy1 - busy0) / max(total1 - total0, 1) * 100
    return f"{share:.0f}% of all CPUs busy in the second before the run; load average {load}"


def was_quiet(background: str, busiest: float = 25.0) -> bool:
    """Whether `background_load` found at most `busiest` % of the CPUs busy."""
    share, _, rest = background.partition("% of all CPUs busy")
    try:
        return bool(rest) and float(share) <= busiest
    except ValueError:
        return False


def machine(background: str = "") -> list[tuple[str, str]]:
    return [
        ("Date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", _cpu_model()),
        ("Cores", f"{os.cpu_count()} logical, {usable_cpus()} usable by this run"),
        ("Memory", _memory_total()),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("Commit", _commit()),
        ("Background load", background or "not measured"),
    ]


def render(
    sections: Sequence[Section], *, command: str, elapsed: float, quick: bool, background: str
) -> str:
    out = ["# Benchmark results", ""]
    if quick:
        out += [
            "**Quick smoke run (`--quick`): shortened loads, figures are indicative only.**",
            "",
        ]
    out += [
        f"Command: `{command}`; the whole run took {elapsed:.0f} s. Every figure is measured",
        "beside its baseline in the same run. All traffic stays on 127.0.0.1.",
        "",
        "## Machine",
        "",
        table(["", ""], [[k, v] for k, v in machine(background)]),
        "",
        "## Summary",
        "",
    ]
    summary: list[list[str]] = []
    for section in sections:
        for row in section.rows:
            summary.append(
                [
                    section.title,
                    row.measure,
                    row.baseline,
                    row.ours,
                    row.ratio,
                    row.target,
                    row.verdict,
                ]
            )
    headers = ["Section", "Measure", "Baseline", "Ours", "Ours / baseline", "Target", "Result"]
    out += [table(headers, summary), ""]
    for section in sections:
        if not (section.details or section.notes):
            continue
        out += [f"## {section.title}", ""]
        for headers_, rows in section.details:
            out += [table(headers_, rows), ""]
        out += [f"- {note}" for note in section.notes]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
