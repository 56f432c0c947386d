"""The bench's side of the fake upstreams: reset and configure them, read what they saw."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import httpx

from bench.servers import Process

ID_PATTERN = re.compile(r"wamid\.bench-[A-Za-z0-9-]+")


class Fake:
    """Control of the fake upstreams process (counts, sends, prompts, hold/release)."""

    def __init__(self, process: Process, client: httpx.AsyncClient) -> None:
        self.process = process
        self.client = client

    async def call(self, action: str, method: str = "GET", **params: Any) -> Any:
        url = f"{self.process.url}/_bench/{action}"
        response = await self.client.request(method, url, params=params, timeout=70)
        response.raise_for_status()
        return response.json()

    async def reset(self, *, delay: float, hold: bool = False) -> None:
        await self.call("reset", "POST")
        await self.call("config", "POST", delay=delay, hold="1" if hold else "0")

    async def stats(self) -> dict[str, int]:
        result: dict[str, int] = await self.call("stats")
        return result

    async def wait_sent(self, count: int, within: float) -> int:
        """Wait (bounded) until the fake Graph has received `count` text messages."""
        deadline = time.monotonic() + within
        sent = 0
        while time.monotonic() < deadline:
            left = min(deadline - time.monotonic(), 30.0)
            sent = (await self.call("wait_sent", n=count, timeout=max(left, 0.01)))["sent"]
            if sent >= count:
                break
        return sent

    async def sent_times(self) -> tuple[dict[str, float], int]:
        """Receipt time of the first reply to each message id, and how many ids got more."""
        first: dict[str, float] = {}
        seen: Counter[str] = Counter()
        for item in await self.call("sent"):
            found = ID_PATTERN.search(item["text"])
            if found:
                seen[found.group()] += 1
                first.setdefault(found.group(), item["t"])
        return first, sum(1 for n in seen.values() if n > 1)
