"""Prometheus metrics: what the assistant does, how fast, what it costs; one registry per app."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric


class TokenUsage(Protocol):
    """What Gemini reported it used for one answer."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...

    @property
    def thinking_tokens(self) -> int: ...


LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class Metrics:
    """The service's metrics; tests and several apps in one process each get their own."""

    def __init__(self) -> None:
        self._sources: list[Callable[[], Iterable[Metric]]] = []
        self.registry = CollectorRegistry()
        counter, gauge, histogram = self._counter, self._gauge, self._histogram
        self.webhooks = counter(
            "assistant_webhooks", "POST /webhook requests, by outcome", "outcome"
        )
        self.webhooks_ok = self.webhooks.labels("ok")  # looked up once: every webhook counts
        self.messages = counter(
            "assistant_messages",
            "Inbound messages handled, by business, kind and outcome",
            "business",
            "kind",
            "outcome",
        )
        self.unknown_number = counter(
            "assistant_unknown_number_messages",
            "Messages for a phone number id that no business of this deployment has (ignored)",
        )
        self.delivery_statuses = counter(
            "assistant_delivery_statuses",
            "Status events (sent, delivered, read, played, failed) of messages the service sent, "
            "by business and status",
            "business",
            "status",
        )
        self.delivery_failures = counter(
            "assistant_delivery_failures",
            "Failed statuses of messages the service sent, by business and Meta error code",
            "business",
            "code",
        )
        self.ignored_statuses = counter(
            "assistant_ignored_statuses",
            "Status events for messages this service did not send (another app on the number)",
        )
        self.backlog = gauge("assistant_inbox_backlog", "Messages recorded but not answered yet")
        self.in_flight = gauge(
            "assistant_answers_in_flight", "Answers being worked on by this process"
        )
        self.worker_processes = gauge(
            "assistant_worker_processes",
            "Worker processes alive and reporting (0: answers are made in the web process)",
        )
        self.gemini_latency = histogram(
            "assistant_gemini_latency_seconds", "Time of one Gemini call, retries included"
        )
        self.gemini_tokens = counter(
            "assistant_gemini_tokens",
            "Gemini tokens from usageMetadata by business and type: prompt, output, thinking "
            "(billed as output), tts (text-to-speech)",
            "business",
            "type",
        )
        self.estimated_cost = counter(
            "assistant_estimated_cost_usd",
            "Estimated Gemini spend in USD by business, from the tokens and searches reported "
            "and the PRICE_* settings (Google's bill is the truth)",
            "business",
        )
        self.gemini_failures = counter(
            "assistant_gemini_failures", "Gemini calls that gave no answer, by business", "business"
        )
        self.grounded = counter(
            "assistant_grounded_answers",
            "Answers that drew on the business's documents or the web, by business",
            "business",
        )
        self.voice_replies = counter(
            "assistant_voice_replies", "Answers sent as voice notes, by business", "business"
        )
        self.voice_fallbacks = counter(
            "assistant_voice_fallbacks",
            "Voice answers sent as text instead, by business and reason",
            "business",
            "reason",
        )
        self.tool_calls = counter(
            "assistant_tool_calls",
            "Calls of the businesses' HTTP and MCP tools, by business, tool and outcome: ok (2xx, "
            "or an MCP result), 3xx/4xx/5xx, tool_error (an MCP error result), timeout, "
            "connection_error, too_large (an MCP result over 64 KiB), invalid_arguments (nothing "
            "sent)",
            "business",
            "tool",
            "outcome",
        )
        self.tool_call_seconds = histogram(
            "assistant_tool_call_seconds",
            "Time of one call of a business's HTTP or MCP tool, by business and tool",
            "business",
            "tool",
        )
        self.graph_latency = histogram(
            "assistant_graph_latency_seconds",
            "Time of one Graph API call, retries included, by call",
            "call",
        )
        self.graph_errors = counter(
            "assistant_graph_errors",
            "Failed Graph API calls, by call and Meta error code",
            "call",
            "code",
        )

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry)

    def _histogram(self, name: str, documentation: str, *labels: str) -> Histogram:
        return Histogram(
            name, documentation, labels, buckets=LATENCY_BUCKETS, registry=self.registry
        )

    def count_tokens(self, business: str, usage: TokenUsage) -> None:
        tokens = self.gemini_tokens
        tokens.labels(business, "prompt").inc(usage.prompt_tokens)
        tokens.labels(business, "output").inc(usage.output_tokens)
        tokens.labels(business, "thinking").inc(usage.thinking_tokens)

    def observe_graph(self, call: str, seconds: float, error_code: int | str | None) -> None:
        self.graph_latency.labels(call).observe(seconds)
        if error_code is not None:
            self.graph_errors.labels(call, str(error_code)).inc()

    def add_source(self, source: Callable[[], Iterable[Metric]]) -> None:
        """More samples of these same metrics: the latest reports of worker processes."""
        self._sources.append(source)

    def render(self) -> bytes:
        if not self._sources:
            return generate_latest(self.registry)
        return generate_latest(_Merged([self.registry.collect(), *(s() for s in self._sources)]))


class _Merged:
    """Several processes' samples as one: values of the same sample and labels are added.

    Right for counters, histograms and the in-flight gauge alike; `*_created` timestamps
    keep the earliest.
    """

    def __init__(self, sources: Iterable[Iterable[Metric]]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for source in self._sources:
            for family in source:
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                samples = values.setdefault(merged.name, {})
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    if key not in samples:
                        samples[key] = sample.value
                    elif sample.name.endswith("_created"):
                        samples[key] = min(samples[key], sample.value)
                    else:
                        samples[key] += sample.value
        for name, family in families.items():
            for (sample_name, labels), value in values[name].items():
                family.add_sample(sample_name, dict(labels), value)
            yield family
