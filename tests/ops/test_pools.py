"""Tests for pools.py: requests fill small pools first to last and give their slot back."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

from ops.pools import ShardedTransport

URL = "http://upstream.test/v1/thing"


class HeldPool(httpx.AsyncBaseTransport):
    """Stands in for one httpx pool: answers each request once `release` is set."""

    def __init__(self, release: asyncio.Event) -> None:
        self.release = release
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        await self.release.wait()
        return httpx.Response(200, stream=httpx.ByteStream(b"ok"))


def held(max_connections: int, per_pool: int) -> tuple[ShardedTransport, asyncio.Event]:
    transport = ShardedTransport(max_connections, shard_connections=per_pool)
    release = asyncio.Event()
    transport._pools = [HeldPool(release) for _ in transport._pools]
    return transport, release


def served(transport: ShardedTransport) -> list[int]:
    return [pool.requests for pool in transport._pools if isinstance(pool, HeldPool)]


async def test_pools_are_sized_from_the_connection_limit() -> None:
    transport = ShardedTransport(10, shard_connections=4)
    assert transport.in_use() == [0, 0, 0]  # 4 + 4 + 2 rounded up to whole pools
    await transport.aclose()
    assert ShardedTransport(2, shard_connections=4).in_use() == [0]


async def test_requests_fill_the_first_pools_first() -> None:
    transport, release = held(16, 4)
    async with httpx.AsyncClient(transport=transport) as client:
        calls = [asyncio.create_task(client.get(URL)) for _ in range(6)]
        await asyncio.sleep(0.01)
        assert transport.in_use() == [4, 2, 0, 0]
        release.set()
        responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200] * 6
    assert transport.in_use() == [0, 0, 0, 0]


async def test_light_traffic_stays_on_the_first_pool() -> None:
    transport, release = held(16, 4)
    release.set()
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(5):
            assert (await client.get(URL)).text == "ok"
    assert served(transport) == [5, 0, 0, 0]


async def test_when_every_pool_is_full_the_least_busy_one_queues() -> None:
    transport, release = held(4, 2)
    async with httpx.AsyncClient(transport=transport) as client:
        calls = [asyncio.create_task(client.get(URL)) for _ in range(5)]
        await asyncio.sleep(0.01)
        assert transport.in_use() == [3, 2]
        release.set()
        await asyncio.gather(*calls)
    assert transport.in_use() == [0, 0]


async def test_a_streamed_response_holds_its_slot_until_closed() -> None:
    transport, release = held(8, 4)
    release.set()
    async with httpx.AsyncClient(transport=transport) as client:
        async with client.stream("GET", URL) as response:
            assert transport.in_use() == [1, 0]
            assert await response.aread() == b"ok"
        assert transport.in_use() == [0, 0]


async def test_a_failed_request_gives_its_slot_back() -> None:
    transport = ShardedTransport(8, shard_connections=4)
    with respx.mock(assert_all_called=True) as router:
        router.get(URL).mock(side_effect=httpx.ConnectError("refused"))
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(URL)
    assert transport.in_use() == [0, 0]


async def test_real_pools_answer_through_respx() -> None:
    """The pools are httpx's own transports: respx (and so every test of the app) sees them."""
    transport = ShardedTransport(8, shard_connections=4)
    with respx.mock(assert_all_called=True) as router:
        route = router.post(URL).mock(return_value=httpx.Response(200, json={"ok": True}))
        async with httpx.AsyncClient(transport=transport) as client:
            answers = await asyncio.gather(*(client.post(URL, json={"n": n}) for n in range(6)))
    assert [a.json() for a in answers] == [{"ok": True}] * 6
    assert route.call_count == 6
    assert transport.in_use() == [0, 0]
