"""The check every message the service POSTs to Graph's `/{version}/{phone number id}/messages`
must pass in tests: Meta's own OpenAPI description of the Cloud API (facebook/openapi, vendored
in tests/schemas/meta/), its request body schema for that endpoint."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator, ValidationError
from openapi_schema import as_json_schema
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).resolve().parent / "schemas" / "meta" / "business-messaging-api_v23.0.yaml"
MESSAGES = "/{Version}/{Phone-Number-ID}/messages"
URI = "urn:facebook-openapi:business-messaging-api"
# The endpoint's schema is for messages only; a read receipt (with the typing indicator) is
# described by a published schema no path refers to, and by this example on the endpoint.
READ_RECEIPT_SCHEMA = "MarkMessageRequestPayload"
READ_RECEIPT_EXAMPLE = "Send typing indicator and read receipt"


class GraphRequestRejected(AssertionError):
    """A request the fake Graph refused because Meta's description does not allow it."""


@functools.cache
def spec() -> dict[str, Any]:
    """The vendored description, as published (read once per process)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it
    document: dict[str, Any] = yaml.load(SPEC.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    return document


def messages_operation() -> dict[str, Any]:
    """POST /{Version}/{Phone-Number-ID}/messages in the vendored description."""
    operation: dict[str, Any] = spec()["paths"][MESSAGES]["post"]
    return operation


def request_examples() -> dict[str, Any]:
    """Meta's examples of request bodies for the endpoint, by their title."""
    content = messages_operation()["requestBody"]["content"]["application/json"]
    return {title: example["value"] for title, example in content["examples"].items()}


def relaxed(document: dict[str, Any]) -> dict[str, Any]:
    """Meta's description without its one requirement that Meta's own examples mostly do not
    meet: the template's `language.policy`. Eight of the nine template examples on this
    endpoint send `{"code"}` alone, as Meta's guides and the contract do (the ninth adds
    `"policy": "deterministic"`); tests/test_meta_openapi.py pins that."""
    language = document["components"]["schemas"]["LanguageObject"]
    language["required"] = [name for name in language["required"] if name != "policy"]
    return document


@functools.cache
def _validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    document = relaxed(as_json_schema(spec()))
    registry: Registry[Any] = Registry().with_resource(URI, DRAFT202012.create_resource(document))
    pointer = "/paths/" + MESSAGES.replace("/", "~1") + "/post/requestBody/content"
    message = {"$ref": f"{URI}#{pointer}/application~1json/schema"}
    example = request_examples()[READ_RECEIPT_EXAMPLE]
    shape = {
        "required": sorted(example),
        "properties": {
            key: {"type": "string"} if key == "message_id" else {"const": value}
            for key, value in example.items()
        },
        "additionalProperties": False,
    }
    receipt = {"allOf": [{"$ref": f"{URI}#/components/schemas/{READ_RECEIPT_SCHEMA}"}, shape]}
    return (
        Draft202012Validator(message, registry=registry),
        Draft202012Validator(receipt, registry=registry),
    )


def problems(body: object) -> list[str]:
    """What Meta's description says is wrong with a request body to the endpoint; [] when
    nothing is. A body with a `status` is a read receipt; any other a message."""
    message, receipt = _validators()
    validator = receipt if isinstance(body, dict) and "status" in body else message
    kind = body.get("type") if isinstance(body, dict) and validator is message else None
    if isinstance(kind, str) and kind not in _kinds():
        return [f"type: {kind!r} is none of the kinds Meta lists: {', '.join(_kinds())}"]
    found = _relevant(validator.iter_errors(body))
    return list(dict.fromkeys(found))  # a schema reached on two paths says the same twice


@functools.cache
def _kinds() -> tuple[str, ...]:
    """The values of a message's `type`, as the endpoint's schema maps them to kinds."""
    return tuple(spec()["components"]["schemas"]["Message"]["discriminator"]["mapping"])


def check_graph_message(body: object) -> None:
    """Raise GraphRequestRejected, saying where and why, unless Meta's description allows
    `body` as a request to POST /{Version}/{Phone-Number-ID}/messages."""
    found = problems(body)
    if found:
        raise GraphRequestRejected(rejection(body, found))


def invalid_parameter(found: list[str]) -> dict[str, Any]:
    """The error Graph answers a request it cannot parse with (code 100), naming the problems."""
    return {
        "error": {
            "message": "(#100) Invalid parameter",
            "type": "OAuthException",
            "code": 100,
            "error_data": {"messaging_product": "whatsapp", "details": "; ".join(found)},
            "fbtrace_id": "AFakeTraceIdForTests",
        }
    }


def check_posted_messages(requests: Iterable[httpx.Request]) -> None:
    """Check every POST to a `/messages` endpoint among `requests` (a respx router's calls)."""
    for request in requests:
        if request.method == "POST" and request.url.path.endswith("/messages"):
            check_graph_message(json.loads(request.content))


def rejection(body: object, found: list[str]) -> str:
    """A readable account of a refused request: what it is, each problem, the body."""
    kind = "read receipt" if isinstance(body, dict) and "status" in body else "message"
    if isinstance(body, dict) and isinstance(body.get("type"), str):
        kind = f"{body['type']} message"
    article = "An" if kind[0] in "aeiou" else "A"
    source = f"Meta's OpenAPI description ({SPEC.relative_to(SPEC.parents[3])})"
    lines = [
        f"{article} {kind} POSTed to {MESSAGES} does not match {source}:",
        *(f"  {problem}" if problem[0] == " " else f"  - {problem}" for problem in found),
        "The request body:",
        json.dumps(body, indent=2, ensure_ascii=False, sort_keys=True),
    ]
    return "\n".join(lines)


def _relevant(errors: Iterable[ValidationError]) -> list[str]:
    """The errors worth reading, described. A message's `oneOf` over every kind only says "not
    valid under any": the discriminator's branch for its `type` says what is wrong. Unevaluated
    properties are left out beside other errors: a part that fails evaluates nothing, so its
    properties then look unexpected too (a real stray key still shows once the rest is fixed)."""
    found = list(errors)
    specific = [error for error in found if not _is_kinds_one_of(error)] or found
    return [line for error in _without_noise(specific) for line in _describe(error)]


def _without_noise(errors: list[ValidationError]) -> list[ValidationError]:
    return [e for e in errors if e.validator != "unevaluatedProperties"] or errors


def _is_kinds_one_of(error: ValidationError) -> bool:
    return error.validator == "oneOf" and not error.absolute_path


def _describe(error: ValidationError) -> list[str]:
    """One line per problem: where in the body, and what. A failed `oneOf` (a media object's
    `id` or `link`, an interactive action's kinds) is told by the alternative that came
    closest, the one whose errors lie deepest in the body."""
    where = _where(error)
    if error.validator not in ("oneOf", "anyOf"):
        return [f"{where}: {_message(error)}"]
    if not error.context:
        keys = ", ".join(sorted(error.instance)) if isinstance(error.instance, dict) else ""
        return [f"{where}: matches more than one of the alternatives of a oneOf ({keys})"]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)
    closest = max(branches.values(), key=lambda b: max(len(e.absolute_path) for e in b))
    # Every alternative failed, so each has its errors among the context.
    head = f"{where}: matches none of the {len(branches)} alternatives of a {error.validator}"
    return [
        f"{head}; the closest:",
        *(f"    {line}" for sub in _without_noise(closest) for line in _describe(sub)),
    ]


def _where(error: ValidationError) -> str:
    parts = (f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return "".join(parts).removeprefix(".") or "(the body)"


def _message(error: ValidationError) -> str:
    """jsonschema's message, with a long value it quotes cut short."""
    quoted = repr(error.instance)
    if len(quoted) <= 80:
        return error.message
    value = error.instance
    if isinstance(value, str):
        brief = f"{value[:40]!r}… ({len(value)} characters)"
    elif isinstance(value, list):
        brief = f"a list of {len(value)} items"
    elif isinstance(value, dict):
        brief = f"an object with {', '.join(map(str, value))}"
    else:
        brief = quoted[:80] + "…"
    return error.message.replace(quoted, brief)
