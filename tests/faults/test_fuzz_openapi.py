"""Schemathesis on the app's OpenAPI document: no route ever answers with a server error.

Part of the fault suite (`make faults`), not of `make test`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from helpers import make_settings
from hypothesis import given, settings
from respx_upstreams import FakeUpstreams
from schemathesis import APIOperation, BaseSchema, Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python import asgi as schemathesis_asgi

from main import create_app

pytestmark = pytest.mark.fault


# --- Schemathesis: every route of the OpenAPI document ------------------------------------------


@pytest.fixture
def api_schema(tmp_path: Path, fakes: FakeUpstreams) -> Iterator[BaseSchema]:
    """The app's own /openapi.json; Schemathesis runs the app, lifespan included, itself."""
    app = create_app(make_settings(f"sqlite:///{tmp_path}/assistant.db"))
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        # Schemathesis keeps a started lifespan until the process exits; end this one now,
        # while its database still exists (its worker stops, its store closes).
        schemathesis_asgi.shutdown_lifespans()


def statuses_of(operation: APIOperation[Any, Any, Any, Any]) -> set[int]:
    """Run Schemathesis' generated cases for one operation; the status codes they got."""
    seen: set[int] = set()

    @settings(max_examples=50, deadline=None, database=None)
    @given(case=operation.as_strategy())
    def call(case: Case[Any]) -> None:
        response = case.call_and_validate(checks=[not_a_server_error])
        seen.add(response.status_code)

    call()
    return seen


def test_openapi_routes_never_answer_with_a_server_error(api_schema: BaseSchema) -> None:
    """GET /health, /ready, /metrics, /webhook and POST /webhook (unsigned: 401): never a 5xx.

    Schemathesis' pytest integration (`schemathesis.pytest.from_fixture` and
    `@schema.parametrize()`) needs `Function._nodeid`, which pytest 9 no longer has; its
    documented Hypothesis strategies (`operation.as_strategy()`) do the same per operation.
    """
    operations: dict[str, APIOperation[Any, Any, Any, Any]] = {}
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself is valid OpenAPI
        operation = result.ok()
        operations[f"{operation.method.upper()} {operation.path}"] = operation
    assert {"GET /health", "GET /ready", "GET /webhook", "POST /webhook"} <= set(operations)
    seen = {name: statuses_of(operation) for name, operation in sorted(operations.items())}
    assert seen["GET /health"] == {200}
    assert seen["GET /ready"] == {200}
    assert seen["POST /webhook"] <= {401, 413}  # never signed: nothing is recorded
    assert seen["GET /webhook"] <= {200, 403}
    assert seen["GET /metrics"] == {200}  # no METRICS_TOKEN set
