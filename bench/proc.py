"""Process measurement: CPU time and memory of a process tree, read from /proc.

A tree is a process and all its live descendants, found through /proc/<pid>/task/*/children:
the service's web process (uvicorn) does its answering in WORKER_PROCESSES child processes, so
its figures cover them all. Every function takes the pid of the tree's root. Also here:
the CPUs this process may use (its affinity mask), which sizes WORKER_PROCESSES, and the CPU
this process spends per call of work started at a fixed rate (`paced_cpu`, section 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class TreeMemory:
    """Memory of a process tree in KiB: VmRSS and VmHWM summed over its processes.

    The sum of VmHWM is an upper bound of the tree's peak: pages shared between processes
    (the interpreter, libraries) count once per process, and each process peaks at its own time.
    """

    processes: int = 0
    rss_kib: int = 0
    hwm_kib: int = 0


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc/<pid>/task/*/children (each thread's own)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as children:
                found += [int(child) for child in children.read().split()]
        except OSError:
            continue
    return found


def process_tree(root: int) -> list[int]:
    """`root` first, then all its live descendants, found recursively."""
    tree: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop(0)
        if pid not in tree:
            tree.append(pid)
            pending += _children(pid)
    return tree


def _kib(text: str, key: str) -> int:
    """The `key:   1234 kB` line of a /proc status or smaps_rollup file, in KiB (0 if absent)."""
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name == key:
            return int(rest.split()[0])
    return 0


def _proc_files(root: int, name: str) -> list[str]:
    """/proc/<pid>/<name> of every process of the tree.

    Raises OSError if the root process itself is gone; a descendant that exits meanwhile is
    left out.
    """
    texts = []
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/{name}", encoding="ascii") as file:
                texts.append(file.read())
        except OSError:
            if pid == root:
                raise
    return texts


def memory_kib(root: int) -> TreeMemory:
    """VmRSS and VmHWM in KiB from /proc, summed over the process tree."""
    statuses = _proc_files(root, "status")
    return TreeMemory(
        len(statuses),
        sum(_kib(s, "VmRSS") for s in statuses),
        sum(_kib(s, "VmHWM") for s in statuses),
    )


def pss_kib(root: int) -> int:
    """The proportional set size in KiB summed over the process tree: pages shared by
    several processes are divided among them, so the sum is what the machine spends."""
    return sum(_kib(rollup, "Pss") for rollup in _proc_files(root, "smaps_rollup"))


def cpu_seconds(root: int) -> float:
    """User plus system CPU time used so far by the process tree.

    Summed over the processes alive now, plus each one's exited and reaped children
    (cutime, cstime), so that a worker process restarted between two readings is not lost.
    """
    ticks = 0
    for stat in _proc_files(root, "stat"):
        fields = stat.rpartition(")")[2].split()
        # utime, stime, cutime, cstime: fields 14 to 17 of stat
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_share(root: int, before: float, seconds: float) -> str:
    """The tree's CPU since `before` (its `cpu_seconds` then) as a share of one core."""
    try:
        return f"{(cpu_seconds(root) - before) / seconds * 100:.0f}%" if seconds > 0 else "n/a"
    except OSError:
        return "n/a"


def rss_now(root: int) -> TreeMemory:
    """VmRSS and VmHWM summed over the service's process tree (zeros once it is gone)."""
    try:
        return memory_kib(root)
    except OSError:
        return TreeMemory()


def pss_now(root: int) -> int:
    try:
        return pss_kib(root)
    except OSError:
        return 0


@dataclass
class PssPeak:
    """The highest summed PSS of a process tree over samples about a second apart."""

    root: int
    peak_kib: int = 0
    samples: int = 0

    def sample(self) -> None:
        value = pss_now(self.root)
        if value:
            self.samples += 1
            self.peak_kib = max(self.peak_kib, value)


@contextlib.asynccontextmanager
async def sampling_pss(root: int, every: float = 1.0) -> AsyncIterator[PssPeak]:
    """Sample the tree's summed PSS every `every` seconds while the block runs, and at its end."""
    peak = PssPeak(root)
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            await asyncio.to_thread(peak.sample)  # smaps_rollup walks page tables: not free
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    sampler = asyncio.create_task(loop())
    try:
        yield peak
    finally:
        stop.set()
        await sampler
        await asyncio.to_thread(peak.sample)


async def idle_memory(root: int) -> tuple[TreeMemory, int]:
    """Summed VmRSS (and PSS) of the tree 1 s after start-up, its worker processes running."""
    await asyncio.sleep(1.0)
    return rss_now(root), pss_now(root)


def tree_label(memory: TreeMemory) -> str:
    """How a memory row names the tree it measured: `web + <n> worker processes`."""
    workers = max(memory.processes - 1, 0)
    return f"web + {workers} worker process{'' if workers == 1 else 'es'}"


MEMORY_NOTE = (
    "Memory covers the service's whole process tree: the web process (uvicorn) and its worker "
    "processes. Idle = their VmRSS (and PSS) summed 1 s after all of them had started. Peak RSS "
    "= their VmHWM summed at the end: an upper bound, as pages shared between the processes "
    "(interpreter, libraries) count once per process and each process peaks at its own time. "
    "Peak PSS = the highest sum of their PSS (`Pss:` of /proc/<pid>/smaps_rollup, shared pages "
    "divided among the processes sharing them: what the machine really spends) over {samples} "
    "samples about 1 s apart, so a shorter spike may be missed."
)


def warm_up(count: int) -> int:
    """How many calls `paced_cpu` makes before it measures `count` of them."""
    return min(20, count)


async def paced_cpu(call: Callable[[int], Awaitable[object]], count: int, rate: float) -> float:
    """CPU seconds per call of `count` calls, one after another, started at `rate` per second."""
    for k in range(warm_up(count)):  # connections, caches, lazy imports
        await call(-1 - k)
    began_cpu, began = time.process_time(), time.monotonic()
    for k in range(count):
        await asyncio.sleep(max(0.0, began + k / rate - time.monotonic()))
        await call(k)
    return (time.process_time() - began_cpu) / count
