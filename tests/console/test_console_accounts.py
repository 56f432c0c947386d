"""Accounts: the admin made at start-up, the Operators page, and what an operator limited to
some businesses may see."""

from __future__ import annotations

import logging

import pytest
from argon2 import PasswordHasher
from console_apps import ADMIN_PASSWORD, cheap_passwords, console_app, number_id
from console_support import OPERATOR_PASSWORD, add_operator, sign_in, signed_in, visible_text
from respx_upstreams import FakeUpstreams

from console.passwords import Passwords
from domain.types import ConversationState

BUSINESSES = ("Padaria Central", "Oficina Rápida")


# ---------------------------------------------------------------------------------------------
# The admin at start-up


async def test_admin_is_created_at_start_up_with_only_a_hash(
    database_url: str, fakes: FakeUpstreams, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with console_app(database_url, fakes, passwords=Passwords()) as console:
        account = await console.store.operators.account("admin")
        assert account is not None and account.operator.is_admin
        assert account.password_hash.startswith("$argon2id$")
        assert ADMIN_PASSWORD not in account.password_hash
        assert PasswordHasher().verify(account.password_hash, ADMIN_PASSWORD)
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
    assert ADMIN_PASSWORD not in caplog.text


async def test_admin_password_follows_the_setting_across_restarts(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        first = await console.store.operators.account("admin")
    assert first is not None
    async with console_app(database_url, fakes) as console:
        same = await console.store.operators.account("admin")
        assert same == first, "an unchanged password is not hashed again"
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        assert await console.store.operators.count_sessions(first.operator.id) == 1
    async with console_app(database_url, fakes, console_password="a-new-admin-password") as console:
        assert await console.store.operators.count_sessions(first.operator.id) == 0
        changed = await console.store.operators.account("admin")
        assert changed is not None
        assert changed.password_hash != first.password_hash
        assert changed.operator.id == first.operator.id
        assert (await sign_in(console.client, "admin", ADMIN_PASSWORD)).status_code == 401
        await signed_in(console.client, "admin", "a-new-admin-password")
        assert len(await console.store.operators.all()) == 1


async def test_hashes_made_with_old_parameters_are_replaced(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:  # cheap parameters
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        await add_operator(console, "olivia", [])
    async with console_app(database_url, fakes, passwords=Passwords()) as console:
        admin = await console.store.operators.account("admin")
        assert admin is not None and "m=65536" in admin.password_hash  # rehashed at start-up
        before = await console.store.operators.account("olivia")
        assert before is not None and "m=8," in before.password_hash
        await signed_in(console.client, "olivia", OPERATOR_PASSWORD)
        after = await console.store.operators.account("olivia")
        assert after is not None and "m=65536" in after.password_hash  # rehashed at sign-in


# ---------------------------------------------------------------------------------------------
# The Operators page


async def test_operators_page_is_the_admins(database_url: str, fakes: FakeUpstreams) -> None:
    async with console_app(database_url, fakes, businesses=BUSINESSES) as console:
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        page = await console.client.get("/console/operators")
        assert page.status_code == 200
        assert all(business in page.text for business in BUSINESSES)
        assert '<a href="/console/operators"' in (await console.client.get("/console")).text
        await add_operator(console, "olivia", ["Padaria Central"])
        async with console.client_from("192.0.2.20") as olivia:
            await signed_in(olivia, "olivia", OPERATOR_PASSWORD)
            assert '<a href="/console/operators"' not in (await olivia.get("/console")).text
            refused = await olivia.get("/console/operators")
            assert refused.status_code == 403
            assert "Only the admin" in refused.text
            response = await olivia.post(
                "/console/operators",
                data={"username": "sneaky", "password": "sneaky-password"},
            )
            assert response.status_code == 403
        assert [o.username for o in await console.store.operators.all()] == ["admin", "olivia"]


async def test_admin_adds_changes_and_removes_an_operator(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes, businesses=BUSINESSES) as console:
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        olivia = await add_operator(console, "Olivia", ["Padaria Central"])
        page = (await console.client.get("/console/operators")).text
        assert "Added olivia." in page
        operator = await console.store.operators.get(olivia)
        assert operator is not None and operator.username == "olivia"
        assert operator.businesses == ("Padaria Central",) and not operator.is_admin
        account = await console.store.operators.account("olivia")
        assert account is not None and OPERATOR_PASSWORD not in account.password_hash

        async with console.client_from("192.0.2.20") as client:
            await signed_in(client, "olivia", OPERATOR_PASSWORD)
            response = await console.client.post(
                f"/console/operators/{olivia}",
                data={"businesses": list(BUSINESSES), "password": "a-fresh-password"},
            )
            assert response.status_code == 303
            assert (await client.get("/console")).status_code == 303  # a new password: signed out
            saved = await console.client.get("/console/operators")
            assert "businesses and password" in saved.text
            operator = await console.store.operators.get(olivia)
            assert operator is not None and set(operator.businesses) == set(BUSINESSES)
            assert (await sign_in(client, "olivia", OPERATOR_PASSWORD)).status_code == 401
            await signed_in(client, "olivia", "a-fresh-password")
            assert (await client.get("/console")).status_code == 200

            response = await console.client.post(f"/console/operators/{olivia}/remove")
            assert response.status_code == 303
            assert "Removed olivia" in (await console.client.get("/console/operators")).text
            assert (await client.get("/console")).status_code == 303  # their session ended
            assert await console.store.operators.count_sessions(olivia) == 0
            assert (await sign_in(client, "olivia", "a-fresh-password")).status_code == 401


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"username": "has space", "password": "long-enough-1"}, "A username is"),
        ({"username": "", "password": "long-enough-1"}, "A username is"),
        ({"username": "olga", "password": "short"}, "at least 8 characters"),
        ({"username": "olga", "password": "long-enough-1", "businesses": ["Nope"]}, "unknown"),
        ({"username": "admin", "password": "long-enough-1"}, "exists already"),
    ],
)
async def test_operator_forms_refuse_bad_input_with_a_message(
    database_url: str, fakes: FakeUpstreams, form: dict[str, object], message: str
) -> None:
    async with console_app(database_url, fakes, businesses=BUSINESSES) as console:
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        response = await console.client.post("/console/operators", data=form)
        assert response.status_code == 303
        page = await console.client.get("/console/operators")
        assert message in page.text
        assert 'class="flash flash-error"' in page.text
        assert [o.username for o in await console.store.operators.all()] == ["admin"]


async def test_the_admin_cannot_be_changed_or_removed_on_the_page(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes) as console:
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        admin = await console.store.operators.account("admin")
        assert admin is not None
        admin_id = admin.operator.id
        updated = await console.client.post(
            f"/console/operators/{admin_id}", data={"password": "taken-over-admin"}
        )
        assert updated.status_code == 404
        removed = await console.client.post(f"/console/operators/{admin_id}/remove")
        assert removed.status_code == 404
        assert await console.store.operators.account("admin") == admin


# ---------------------------------------------------------------------------------------------
# Operators limited to some businesses


async def test_an_operator_sees_only_the_businesses_given_to_them(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes, businesses=BUSINESSES) as console:
        bakery = await console.write("Hello", name="Ana Bakery", to=number_id(0))
        garage = await console.write("garage secret", name="Bruno Garage", to=number_id(1))
        await console.write("/human", name="Bruno Garage", to=number_id(1))
        sent_before = len(fakes.sent())
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        everything = visible_text((await console.client.get("/console")).text)
        assert "Ana Bakery" in everything and "Bruno Garage" in everything
        assert "Padaria Central" in everything and "Oficina Rápida" in everything
        await add_operator(console, "olivia", ["Padaria Central"])

        async with console.client_from("192.0.2.30") as olivia:
            await signed_in(olivia, "olivia", OPERATOR_PASSWORD)
            for path in ("/console", "/console/live/list", "/console?state=waiting&q=Bruno"):
                text = visible_text((await olivia.get(path)).text)
                assert "Bruno Garage" not in text and "garage secret" not in text, path
            assert "Ana Bakery" in visible_text((await olivia.get("/console")).text)
            assert (await olivia.get(f"/console/conversations/{bakery}")).status_code == 200
            for path in (
                f"/console/conversations/{garage}",
                f"/console/live/conversations/{garage}",
            ):
                response = await olivia.get(path)
                assert response.status_code == 404
                assert "garage secret" not in response.text and "Bruno" not in response.text
            for action in ("take-over", "hand-back", "reply"):
                response = await olivia.post(
                    f"/console/conversations/{garage}/{action}", data={"text": "hello"}
                )
                assert response.status_code == 404, action
        assert (await console.conversation(garage)).state == ConversationState.WAITING
        assert len(fakes.sent()) == sent_before


async def test_an_operator_without_businesses_sees_no_conversation(
    database_url: str, fakes: FakeUpstreams
) -> None:
    async with console_app(database_url, fakes, businesses=BUSINESSES) as console:
        await console.write("Hello", name="Ana Bakery", to=number_id(0))
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        await add_operator(console, "olivia", [])
        async with console.client_from("192.0.2.31") as olivia:
            await signed_in(olivia, "olivia", OPERATOR_PASSWORD)
            page = await olivia.get("/console")
            assert "Ana Bakery" not in page.text and "No conversations yet." in page.text


async def test_cheap_passwords_are_still_argon2id_and_unknown_names_never_match() -> None:
    passwords = cheap_passwords()
    made = await passwords.hash("some password")
    assert made.startswith("$argon2id$")
    assert (await passwords.check(made, "some password")).matches
    assert not (await passwords.check(None, "some password")).matches
    assert not (await passwords.check(made, "x" * 5000)).matches
