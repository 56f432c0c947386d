"""The plan of one run: the sizes, rates and durations of every section's load (`Plan`)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.proc import usable_cpus


@dataclass(frozen=True)
class Plan:
    quick: bool
    saturation_seconds: float
    open_seconds: float
    e2e_seconds: float
    e2e_baseline_seconds: float
    conversation_length: int
    probes: tuple[int, int]
    in_flight: int
    worker_processes: int  # WORKER_PROCESSES of every service: the CPUs this run may use
    connections: int = 50
    open_rates: tuple[int, ...] = (100, 200, 400)
    e2e_rate: int = 100
    e2e_users: int = 500
    gemini_delay: float = 2.0
    concurrency: int = 400  # MAX_CONCURRENCY for sections 1 and 2 (100/s x 2 s needs >= 200)
    senders: int = 5000  # distinct users in section 1

    @classmethod
    def make(cls, quick: bool, duration: float | None) -> Plan:
        e2e = duration if duration is not None else (5.0 if quick else 60.0)
        return cls(
            quick=quick,
            saturation_seconds=2.0 if quick else 10.0,
            open_seconds=2.0 if quick else 10.0,
            e2e_seconds=e2e,
            e2e_baseline_seconds=min(e2e, 20.0),
            conversation_length=200,
            probes=(20, 200),
            in_flight=200 if quick else 1000,
            worker_processes=usable_cpus(),
        )

    def service_settings(self) -> dict[str, str]:
        """The settings of the services of sections 1 and 2: MAX_CONCURRENCY, WORKER_PROCESSES."""
        return {
            "max_concurrency": str(self.concurrency),
            "worker_processes": str(self.worker_processes),
        }
