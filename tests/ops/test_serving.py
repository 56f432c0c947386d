"""Where uvicorn will listen: whether it can, and what a person reads when it cannot."""

from __future__ import annotations

import errno
import socket

import pytest
import uvicorn.main

from ops.serving import Listening, bind_problem, cannot_listen_message, uvicorn_listening

EVERYWHERE = "0.0.0.0"  # noqa: S104 - every interface, as uvicorn's --host names it


def test_a_port_something_listens_on_is_a_problem_and_a_free_one_is_not() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        problem = bind_problem("127.0.0.1", port)
        assert problem is not None and problem.errno == errno.EADDRINUSE
        assert bind_problem(EVERYWHERE, port) is not None  # every interface includes that one
    assert bind_problem("127.0.0.1", port) is None
    assert bind_problem("127.0.0.1", 0) is None  # any free port: nothing to check


def test_the_message_names_the_port_and_every_way_of_choosing_another() -> None:
    in_use = OSError(errno.EADDRINUSE, "Address already in use")
    message = cannot_listen_message(Listening(EVERYWHERE, 10000), in_use)
    assert "port 10000 is already in use" in message
    assert "--port 10001" in message and "make run PORT=10001" in message
    assert "Render" in message and "PORT" in message
    denied = cannot_listen_message(Listening("127.0.0.1", 80), OSError(errno.EACCES, "Denied"))
    assert "port 80 on 127.0.0.1 (Denied)" in denied


def test_local_urls_a_browser_can_open() -> None:
    assert Listening("127.0.0.1", 8000).local_url == "http://127.0.0.1:8000"
    assert Listening(EVERYWHERE, 8000).local_url == "http://localhost:8000"
    assert Listening("::1", 8000).local_url == "http://[::1]:8000"


def test_nothing_is_known_outside_uvicorn_command_line() -> None:
    assert uvicorn_listening() is None


def test_the_address_is_read_from_uvicorn_command_line_and_its_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UVICORN_PORT", "9123")
    with uvicorn.main.make_context("uvicorn", ["main:app", "--host", EVERYWHERE]):
        assert uvicorn_listening() == Listening(EVERYWHERE, 9123, binds=True)
    with uvicorn.main.make_context("uvicorn", ["main:app", "--workers", "2"]):
        assert uvicorn_listening() == Listening("127.0.0.1", 9123, binds=False)  # bound before
    with uvicorn.main.make_context("uvicorn", ["main:app", "--uds", "/tmp/assistant.sock"]):
        assert uvicorn_listening() is None
