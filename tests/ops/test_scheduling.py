"""What a process asks of Linux's scheduler: a worker steps back, alone, never its session; the
web process asks for a short slice, which the threads it starts inherit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from running import autogroup_nice, in_a_thread

from ops.scheduling import ask_for_slice, slice_of_this_thread

ROOT = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc")

STEP_BACK = """
import os
from ops.scheduling import step_back
step_back(19)
print(os.nice(0))
print((open("/proc/self/autogroup").read().split() or ["none"])[-1])
"""


def run_stepping_back(*, own_session: bool) -> tuple[int, int | None]:
    """A child that steps back by 19: its nice value, and its autogroup's (None in the
    kernel's root group, which a session that never had an autogroup of its own stays in)."""
    done = subprocess.run(
        [sys.executable, "-c", STEP_BACK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        start_new_session=own_session,
        timeout=30,
    )
    nice, group = done.stdout.split()
    return int(nice), None if group == "none" else int(group)


@linux_only
@pytest.mark.skipif(not os.path.exists("/proc/self/autogroup"), reason="no autogroup here")
def test_stepping_back_lowers_the_process_never_its_session() -> None:
    """Even a session leader leaves its session's autogroup alone: the web process shares it
    with its workers, and a lower group would lower the web process with them."""
    assert run_stepping_back(own_session=True) == (19, 0)


@linux_only
@pytest.mark.skipif(not os.path.exists("/proc/self/autogroup"), reason="no autogroup here")
def test_a_process_in_someone_elses_session_leaves_the_session_alone() -> None:
    before = autogroup_nice()
    nice, group = run_stepping_back(own_session=False)
    assert nice == 19
    assert group == before == autogroup_nice()  # the test run's own session kept its weight


@linux_only
def test_a_short_slice_is_asked_for_and_inherited_by_threads_started_later() -> None:
    def ask_then_start_a_thread() -> tuple[bool, int | None, int | None]:
        taken = ask_for_slice(0.0005)
        return taken, slice_of_this_thread(), in_a_thread(slice_of_this_thread)

    taken, own, inherited = in_a_thread(ask_then_start_a_thread)
    if not taken:
        pytest.skip("this kernel takes no slice requests (Linux before 6.12)")
    assert own == inherited == 500_000
