"""Prometheus metrics: what the assistant does, how fast, what it costs; one registry per app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class Metrics:
    """The service's metrics; tests and several apps in one process each get their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.webhooks = Counter(
            "assistant_webhooks",
            "POST /webhook requests, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.messages = Counter(
            "assistant_messages",
            "Inbound messages handled, by kind and outcome",
            ["kind", "outcome"],
            registry=registry,
        )
        self.backlog = Gauge(
            "assistant_inbox_backlog", "Messages recorded but not answered yet", registry=registry
        )
        self.in_flight = Gauge(
            "assistant_answers_in_flight",
            "Answers being worked on by this process",
            registry=registry,
        )
        self.gemini_latency = Histogram(
            "assistant_gemini_latency_seconds",
            "Time of one Gemini call, retries included",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.gemini_tokens = Counter(
            "assistant_gemini_tokens",
            "Gemini tokens from usageMetadata by type: prompt, output, thinking (billed as output)",
            ["type"],
            registry=registry,
        )
        self.gemini_failures = Counter(
            "assistant_gemini_failures", "Gemini calls that gave no answer", registry=registry
        )
        self.graph_latency = Histogram(
            "assistant_graph_latency_seconds",
            "Time of one Graph API call, retries included, by call",
            ["call"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.graph_errors = Counter(
            "assistant_graph_errors",
            "Failed Graph API calls, by call and Meta error code",
            ["call", "code"],
            registry=registry,
        )

    def observe_graph(self, call: str, seconds: float, error_code: int | str | None) -> None:
        self.graph_latency.labels(call).observe(seconds)
        if error_code is not None:
            self.graph_errors.labels(call, str(error_code)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
