"""The sign-in throttle: failures counted per username and per client address in the database,
429 until the window slides; and the periodic purge of the console's rows."""

from __future__ import annotations

import logging

import pytest
from console_apps import ADMIN_PASSWORD, console_app
from console_support import sign_in, signed_in
from respx_upstreams import FakeUpstreams


async def test_ten_failures_for_one_username_throttle_it_until_the_window_slides(
    database_url: str, fakes: FakeUpstreams, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with console_app(database_url, fakes) as console:
        for attempt in range(10):  # from ten addresses: only the name is common
            async with console.client_from(f"198.51.100.{attempt}") as client:
                assert (await sign_in(client, "admin", f"guess-{attempt}")).status_code == 401
        console.clock.advance(60)
        async with console.client_from("203.0.113.7") as client:
            response = await sign_in(client, "admin", ADMIN_PASSWORD)
            assert response.status_code == 429
            assert "Too many failed sign-ins" in response.text
            assert "set-cookie" not in response.headers
            assert 0 < int(response.headers["retry-after"]) <= 15 * 60 - 60 + 1
            other = await sign_in(client, "someone-else", "whatever-password")
            assert other.status_code == 401, "another name from this address is still checked"
        console.clock.advance(15 * 60 - 60 + 1)
        async with console.client_from("203.0.113.7") as client:
            await signed_in(client, "admin", ADMIN_PASSWORD)
    assert "guess-" not in caplog.text and ADMIN_PASSWORD not in caplog.text
    assert "admin" not in caplog.text.replace("console admin", "")


async def test_ten_failures_from_one_address_throttle_it_until_the_window_slides(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        for attempt in range(10):
            response = await sign_in(console.client, f"user{attempt}", "not-the-password")
            assert response.status_code == 401
        response = await sign_in(console.client, "admin", ADMIN_PASSWORD)
        assert response.status_code == 429
        assert "Retry-After" in response.headers
        assert "console_session" not in console.client.cookies
        async with console.client_from("198.51.100.99") as elsewhere:
            await signed_in(elsewhere, "admin", ADMIN_PASSWORD)
        console.clock.advance(14 * 60)
        assert (await sign_in(console.client, "admin", ADMIN_PASSWORD)).status_code == 429
        console.clock.advance(61)
        await signed_in(console.client, "admin", ADMIN_PASSWORD)


async def test_nine_failures_do_not_throttle(database_url: str, fakes: FakeUpstreams) -> None:
    async with console_app(database_url, fakes) as console:
        for _ in range(9):
            await sign_in(console.client, "admin", "wrong-password")
        await signed_in(console.client, "admin", ADMIN_PASSWORD)


async def test_the_count_is_shared_by_every_instance(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with (
        console_app(database_url, fakes) as first,
        console_app(database_url, fakes) as second,
    ):
        for _ in range(5):
            await sign_in(first.client, "admin", "wrong-password")
            await sign_in(second.client, "admin", "wrong-password")
        assert (await sign_in(first.client, "admin", ADMIN_PASSWORD)).status_code == 429


async def test_purge_removes_expired_sessions_and_old_failures(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        await sign_in(console.client, "admin", "wrong-password")
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        operators = console.store.operators
        now = console.clock()
        assert await operators.purge(now=now, failures_before=now - 3600) == 0
        assert await operators.purge(now=now + 13 * 3600, failures_before=now + 1) == 2
        assert (await console.client.get("/console")).status_code == 303


async def test_the_stores_periodic_purge_includes_the_consoles_rows(
    database_url: str, fakes: FakeUpstreams
) -> None:
    # Nothing answers in this process, so no housekeeping purges before the test's own does.
    async with console_app(database_url, fakes, external_workers=True) as console:
        operators = console.store.operators
        admin = await operators.account("admin")
        assert admin is not None
        now = console.clock()
        await operators.start_session("a" * 64, admin.operator.id, now - 50 * 3600, now - 1)
        await operators.start_session("b" * 64, admin.operator.id, now, now + 3600)
        await operators.record_failure("n" * 64, "a" * 64, now - 2 * 86400)
        await operators.record_failure("n" * 64, "a" * 64, now - 60)
        keys = ("n" * 64, "a" * 64)
        days = 3 * 86400
        assert await operators.retry_after(*keys, now=now, window=days, limit=2) > 0
        await console.store.purge(turns_before=0, inbox_before=0)
        assert await operators.count_sessions(admin.operator.id) == 1
        assert await operators.retry_after(*keys, now=now, window=days, limit=2) == 0
        assert await operators.retry_after(*keys, now=now, window=days, limit=1) > 0  # kept
