"""How the web process and its worker processes ask Linux's scheduler to share the CPUs.

A webhook waits for the web process to get a CPU; an answer waits seconds for Gemini anyway.
So the worker processes step back and the web process asks to be let in sooner:

- `step_back`: a worker's nice value. Linux groups processes by session (autogroup, on when the
  kernel has it and the processes are not in a CPU cgroup of their own) and shares the CPUs
  between the groups first: a nice value weighs only against processes of the same group. So a
  worker stays in the web process's session (service/processes.py), where nice 19 puts it below
  the web process itself. In a session of its own, even at nice 19 for the whole session, the
  scheduler let a worker finish what it was doing before a woken web process could run.
- `ask_for_slice`: Linux 6.12 and later read `sched_attr.sched_runtime` as the scheduler slice
  a task asks for (0.1-100 ms), and a task that wakes with a shorter slice than the running one
  takes the CPU from it at once, where otherwise the running one may finish its slice (and the
  kernel notices only at its next tick). So the web process asks for a slice below the
  kernel's default (its work per webhook is well under it), and a worker for the longest,
  which anything else that wakes beside it may interrupt: the load generator and the fake
  upstreams of a bench as much as the web process.

Both are requests the kernel may ignore (another OS, an older kernel); the service works the
same without them, only with a slower tail.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

WEB_SLICE_SECONDS = 0.0005  # about the CPU one webhook takes, at a high percentile
WORKER_SLICE_SECONDS = 0.1  # the longest the kernel takes
# sched_setattr and sched_getattr: glibc wraps neither, so they are called by number.
_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}
_CALLS = _SYSCALLS.get(platform.machine()) if sys.platform.startswith("linux") else None


class _SchedAttr(ctypes.Structure):
    """`struct sched_attr` (linux/sched/types.h), as far as SCHED_ATTR_SIZE_VER1."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
        ("sched_util_min", ctypes.c_uint32),
        ("sched_util_max", ctypes.c_uint32),
    ]


def step_back(niceness: int) -> None:
    """Raise this process's nice value by `niceness`, then ask for the longest slice in place
    of the one it may have inherited. Its session's autogroup, shared with the web process, is
    left alone: lowering it would lower the web process too."""
    os.nice(niceness)
    ask_for_slice(WORKER_SLICE_SECONDS)


def ask_for_slice(slice_seconds: float) -> bool:
    """Ask for a scheduler slice of `slice_seconds` for this thread and the threads and
    processes it starts later, which inherit it. True when the kernel took the request."""
    current = _attributes_of_this_thread()
    if current is None or _CALLS is None:
        return False
    syscall, attributes = current
    if attributes.sched_policy not in (os.SCHED_OTHER, os.SCHED_BATCH):
        return False  # a real-time or idle policy was chosen for this process: keep it
    wanted = round(slice_seconds * 1_000_000_000)
    attributes.sched_flags = 0
    attributes.sched_runtime = wanted
    if int(syscall(_CALLS[0], 0, ctypes.byref(attributes), 0)) != 0:
        log.debug("scheduler slice not set (errno %d)", ctypes.get_errno())
        return False
    return slice_of_this_thread() == wanted


def slice_of_this_thread() -> int | None:
    """This thread's scheduler slice in nanoseconds: the one it asked for, else the kernel's
    default (Linux before 6.12: 0); None where it cannot be read."""
    current = _attributes_of_this_thread()
    return None if current is None else int(current[1].sched_runtime)


def _attributes_of_this_thread() -> tuple[Callable[..., int], _SchedAttr] | None:
    """libc's `syscall` and this thread's `sched_attr`, on Linux where their numbers are known."""
    if _CALLS is None:
        return None
    syscall = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).syscall
    attributes = _SchedAttr()
    attributes.size = ctypes.sizeof(_SchedAttr)
    if int(syscall(_CALLS[1], 0, ctypes.byref(attributes), attributes.size, 0)) != 0:
        return None
    return syscall, attributes
