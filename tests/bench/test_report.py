"""The bench's report: a profile taken on a busy machine says so, a quiet one's does not."""

from __future__ import annotations

from bench.report import was_quiet


def test_a_run_is_quiet_only_when_few_cpus_were_busy_before_it() -> None:
    assert was_quiet("0% of all CPUs busy in the second before the run; load average 0.3 0.9 1.3")
    assert was_quiet("25% of all CPUs busy in the second before the run; load average 1 1 1")
    assert not was_quiet("26% of all CPUs busy in the second before the run; load average 1 1 1")
    assert not was_quiet("100% of all CPUs busy in the second before the run; load average 11")
    assert not was_quiet("unknown")
    assert not was_quiet("")
