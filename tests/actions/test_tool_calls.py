"""One tool call against a real HTTP server standing in for the business's API: what is sent
(path encoding, query or body, auth, the customer header), what comes back, and what never goes."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from business_api import BusinessApi
from fake_upstreams import free_port

from actions.calls import MAX_BODY_BYTES, ToolCaller, prepare, segment, tools_http_client
from domain.tools import HttpTool, read_tool
from ops.metrics import Metrics

CUSTOMER = "16505551234"
ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_id"],
    "properties": {
        "order_id": {"type": "string", "description": "The order number"},
        "detail": {"type": "string", "enum": ["short", "full"]},
        "items": {"type": "array", "items": {"type": "integer"}},
    },
}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = tools_http_client(8)
    yield client
    await client.aclose()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def caller(http: httpx.AsyncClient, metrics: Metrics) -> ToolCaller:
    return ToolCaller(http, metrics)


def tool(url: str, **entry: Any) -> HttpTool:
    return read_tool(
        {
            "name": "order_status",
            "description": "Delivery status of an order, by its number.",
            "url": url,
            "parameters": ORDER_SCHEMA,
            **entry,
        }
    )


async def call(caller: ToolCaller, used: HttpTool, **args: Any) -> Any:
    return await caller.call(used, args, customer=CUSTOMER, business="shop")


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("A-1001", "/echo/A-1001/items"),
        ("A/1", "/echo/A%2F1/items"),  # not another segment
        ("..", "/echo/%2E%2E/items"),  # not the parent
        (".", "/echo/%2E/items"),
        ("a?b=1#c", "/echo/a%3Fb%3D1%23c/items"),  # no query, no fragment
        ("é 1&x", "/echo/%C3%A9%201%26x/items"),
        ("../../admin", "/echo/..%2F..%2Fadmin/items"),  # dots stay, but in one segment
    ],
)
async def test_a_placeholder_is_one_path_segment_on_the_same_host(
    caller: ToolCaller, seen: BusinessApi, value: str, path: str
) -> None:
    result = await call(caller, tool(f"{seen.url}/echo/{{order_id}}/items"), order_id=value)

    [request] = seen.requests
    assert request.raw_path == path
    assert request.query == ""
    assert request.headers["host"] == f"127.0.0.1:{seen.port}"
    assert result.response == {
        "status": 200,
        "body": {"method": "GET", "path": path, "query": "", "body": None},
    }


def test_segments_encode_what_could_change_the_url() -> None:
    assert segment("a/b?c#d") == "a%2Fb%3Fc%23d"
    assert segment("..") == "%2E%2E"
    assert segment("v1.2") == "v1.2"
    assert segment(12) == "12"
    assert segment(True) == "true"


def test_the_host_cannot_come_from_a_value() -> None:
    used = tool("https://api.example.com/{order_id}")
    prepared = prepare(used, {"order_id": "@evil.example/x"})
    assert not isinstance(prepared, str)
    assert prepared.url.host == "api.example.com"
    assert prepared.url.raw_path == b"/%40evil.example%2Fx"


async def test_other_arguments_go_as_query_parameters_of_a_get(
    caller: ToolCaller, seen: BusinessApi
) -> None:
    used = tool(f"{seen.url}/echo/{{order_id}}?lang=pt")
    await call(caller, used, order_id="A1", detail="full", items=[1, 2])
    [request] = seen.requests
    assert request.method == "GET"
    assert request.raw_path == "/echo/A1"
    assert request.query == "lang=pt&detail=full&items=1&items=2"  # the URL's own query kept
    assert request.body == b""


async def test_other_arguments_go_as_the_json_body_of_a_post(
    caller: ToolCaller, seen: BusinessApi
) -> None:
    used = tool(f"{seen.url}/echo/{{order_id}}", method="POST")
    result = await call(caller, used, order_id="A1", detail="short", items=[3])
    [request] = seen.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"detail": "short", "items": [3]}
    assert result.response["status"] == 200


async def test_arguments_the_schema_does_not_declare_are_dropped(
    caller: ToolCaller, seen: BusinessApi
) -> None:
    used = tool(f"{seen.url}/echo/{{order_id}}")
    await call(caller, used, order_id="A1", customer="5511987654321", url="http://evil.test/")
    [request] = seen.requests
    assert request.query == ""
    assert "5511987654321" not in json.dumps(request.headers)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({}, "'order_id' is a required property"),
        ({"order_id": 12}, "order_id: 12 is not of type 'string'"),
        ({"order_id": "A1", "detail": "everything"}, "detail: 'everything' is not one of"),
        ({"order_id": "A1", "items": ["x"]}, "items[0]: 'x' is not of type 'integer'"),
        ({"order_id": ""}, "order_id is required"),  # an empty segment would list every order
    ],
)
async def test_invalid_arguments_go_nowhere_and_gemini_is_told_why(
    caller: ToolCaller, seen: BusinessApi, metrics: Metrics, args: dict[str, Any], problem: str
) -> None:
    result = await caller.call(
        tool(f"{seen.url}/echo/{{order_id}}"), args, customer=CUSTOMER, business="shop"
    )
    assert seen.requests == []
    assert set(result.response) == {"error"}
    assert result.response["error"].startswith(problem)
    assert (result.record.status, result.record.error) == (None, "invalid arguments")
    assert (
        'assistant_tool_calls_total{business="shop",outcome="invalid_arguments",'
        'tool="order_status"} 1.0' in metrics.render().decode()
    )


@pytest.mark.parametrize(
    ("auth", "header", "expected"),
    [
        ({"type": "bearer", "token_env": "SHOP_TOKEN"}, "authorization", "Bearer s3cret-t0ken"),
        (
            {"type": "basic", "username_env": "SHOP_USER", "password_env": "SHOP_TOKEN"},
            "authorization",
            "Basic " + base64.b64encode(b"shop:s3cret-t0ken").decode(),
        ),
        (
            {"type": "header", "name": "X-Api-Key", "value_env": "SHOP_TOKEN"},
            "x-api-key",
            "s3cret-t0ken",
        ),
    ],
)
async def test_each_kind_of_auth_sends_the_secret_of_its_variable(
    caller: ToolCaller,
    seen: BusinessApi,
    monkeypatch: pytest.MonkeyPatch,
    auth: dict[str, str],
    header: str,
    expected: str,
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "s3cret-t0ken")
    monkeypatch.setenv("SHOP_USER", "shop")
    await call(caller, tool(f"{seen.url}/echo/{{order_id}}", auth=auth), order_id="A1")
    [request] = seen.requests
    assert request.headers[header] == expected
    assert request.headers["accept"] == "application/json"


async def test_the_customer_header_carries_the_customer_given(
    caller: ToolCaller, seen: BusinessApi
) -> None:
    used = tool(f"{seen.url}/orders/{{order_id}}", customer_header="X-Customer")
    result = await call(caller, used, order_id="mine")
    assert seen.requests[0].headers["x-customer"] == CUSTOMER
    assert result.response["body"]["orders"] == [{"number": "A-1001", "status": "out for delivery"}]


async def test_without_a_customer_header_no_customer_is_sent(
    caller: ToolCaller, seen: BusinessApi
) -> None:
    await call(caller, tool(f"{seen.url}/echo/{{order_id}}"), order_id="A1")
    [request] = seen.requests
    assert CUSTOMER not in json.dumps(request.headers) + request.raw_path + request.query


async def test_a_slow_api_is_a_timeout(
    caller: ToolCaller, seen: BusinessApi, metrics: Metrics
) -> None:
    started = time.monotonic()
    result = await call(
        caller, tool(f"{seen.url}/slow/{{order_id}}", timeout_seconds=1), order_id="1"
    )
    assert time.monotonic() - started < 2.5
    assert result.response == {"error": "timeout"}
    assert (result.record.status, result.record.error) == (None, "timeout")
    assert 900 <= result.record.duration_ms < 2500
    rendered = metrics.render().decode()
    assert 'outcome="timeout",tool="order_status"} 1.0' in rendered
    assert 'assistant_tool_call_seconds_count{business="shop",tool="order_status"} 1.0' in rendered


async def test_a_server_error_goes_back_with_its_status_and_body(
    caller: ToolCaller, seen: BusinessApi, metrics: Metrics
) -> None:
    result = await call(caller, tool(f"{seen.url}/fail/{{order_id}}"), order_id="1")
    assert result.response == {"status": 503, "body": {"error": "maintenance"}}
    assert result.record.status == 503
    assert 'outcome="5xx",tool="order_status"} 1.0' in metrics.render().decode()


async def test_a_body_that_is_not_json_goes_back_as_text(
    caller: ToolCaller, seen: BusinessApi
) -> None:
    result = await call(caller, tool(f"{seen.url}/text/{{order_id}}"), order_id="1")
    assert result.response == {"status": 200, "body": "<html>not json</html>"}


async def test_json_over_8_kib_goes_back_as_text_cut_at_8192_bytes(
    caller: ToolCaller, seen: BusinessApi
) -> None:
    result = await call(caller, tool(f"{seen.url}/big/{{order_id}}"), order_id="1")
    body = result.response["body"]
    assert isinstance(body, str)
    assert len(body.encode()) == MAX_BODY_BYTES
    assert body.startswith('{"items": ["xxx')


async def test_a_body_that_never_ends_is_read_to_a_bound(
    caller: ToolCaller, seen: BusinessApi
) -> None:
    started = time.monotonic()
    result = await call(caller, tool(f"{seen.url}/endless/{{order_id}}"), order_id="1")
    assert time.monotonic() - started < 3
    assert result.response["status"] == 200
    assert len(result.response["body"].encode()) == MAX_BODY_BYTES


async def test_a_redirect_is_not_followed(caller: ToolCaller, seen: BusinessApi) -> None:
    result = await call(caller, tool(f"{seen.url}/redirect/{{order_id}}"), order_id="1")
    assert result.response == {"status": 302, "body": ""}
    assert len(seen.requests) == 1


async def test_nothing_listening_is_a_connection_problem(caller: ToolCaller) -> None:
    used = tool(f"http://127.0.0.1:{free_port()}/orders/{{order_id}}")
    result = await call(caller, used, order_id="1")
    assert result.response == {"error": "connection problem (ConnectError)"}
    assert result.record.error == "connection problem (ConnectError)"


async def test_the_log_says_name_status_and_duration_never_arguments_or_results(
    caller: ToolCaller, seen: BusinessApi, caplog: pytest.LogCaptureFixture
) -> None:
    used = tool(f"{seen.url}/orders/{{order_id}}", customer_header="X-Customer")
    with caplog.at_level(logging.DEBUG):
        await call(caller, used, order_id="SECRET-ORDER-77")
    [line] = [r for r in caplog.records if r.name == "actions.calls"]
    text = line.getMessage() + json.dumps({k: str(v) for k, v in vars(line).items()})
    assert line.getMessage().startswith("tool order_status: 200 in ")
    assert "SECRET-ORDER-77" not in text
    assert "out for delivery" not in text
    assert CUSTOMER not in text
