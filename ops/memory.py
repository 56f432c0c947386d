"""The garbage collector's settings for the service's long-running processes."""

from __future__ import annotations

import gc

# Collect young objects every 10,000 allocations rather than 700: handling a webhook or an
# answer allocates hundreds, and each pass costs more than the memory it frees sooner.
GC_THRESHOLDS = (10_000, 20, 20)


def settle_garbage_collector() -> None:
    """Keep what start-up loaded out of the garbage collector's passes (bench/RESULTS.md).

    It lives as long as the process, and full passes over it paused webhooks and answers.
    Called once a process has started; tests build many apps in one process and skip it.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
