"""A tool's JSON schema as Gemini's function declarations take it (an OpenAPI subset).

The service validates arguments against the whole schema (jsonschema); Gemini is declared the
same schema less what only validation uses. A keyword Gemini's declarations do not know would
make every request of the business fail, so it stops start-up instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# What google-genai's `Schema` (and so the API's function declarations) accepts.
DECLARED = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "minimum",
        "maximum",
    }
)
# Kept for validation, left out of the declaration.
VALIDATION_ONLY = frozenset({"additionalProperties", "$schema", "$comment"})
TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})


def gemini_schema_problem(schema: Mapping[str, Any], where: str = "") -> str | None:
    """What in `schema` Gemini's function declarations cannot take, or None."""
    for key, value in schema.items():
        at = f"{where}.{key}" if where else key
        if key not in DECLARED and key not in VALIDATION_ONLY:
            return f"{at}: Gemini's function declarations do not take the keyword {key!r}"
        if key == "type" and not (isinstance(value, str) and value in TYPES):
            return f"{at}: must be one of {', '.join(sorted(TYPES))} (one type, not a list)"
        if key == "enum" and not all(isinstance(item, str) for item in value or ()):
            return f"{at}: Gemini takes enums of strings only"
        problem = _nested_problem(key, value, at)
        if problem is not None:
            return problem
    return None


def _nested_problem(key: str, value: Any, at: str) -> str | None:
    if key == "properties" and isinstance(value, Mapping):
        for name, sub in value.items():
            if isinstance(sub, Mapping):
                problem = gemini_schema_problem(sub, f"{at}.{name}")
                if problem is not None:
                    return problem
    elif key == "items" and isinstance(value, Mapping):
        return gemini_schema_problem(value, at)
    elif key == "anyOf" and isinstance(value, list):
        for index, sub in enumerate(value):
            if isinstance(sub, Mapping):
                problem = gemini_schema_problem(sub, f"{at}[{index}]")
                if problem is not None:
                    return problem
    return None


def declared_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` without the keywords only validation uses, at every level."""
    declared: dict[str, Any] = {}
    for key, value in schema.items():
        if key in VALIDATION_ONLY:
            continue
        if key == "properties" and isinstance(value, Mapping):
            value = {name: declared_schema(sub) for name, sub in value.items()}
        elif key == "items" and isinstance(value, Mapping):
            value = declared_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            value = [declared_schema(sub) for sub in value]
        declared[key] = value
    return declared


def inlined(schema: Mapping[str, Any]) -> dict[str, Any] | str:
    """`schema` with each local reference (`{"$ref": "#/$defs/Item"}`, as pydantic writes nested
    models) replaced by the schema it names, or what stops that: a reference elsewhere, or one
    that refers to itself. Gemini's declarations take no references."""
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    top = {key: value for key, value in schema.items() if key not in ("$defs", "definitions")}
    try:
        resolved: dict[str, Any] = _resolved(top, defs, ())
    except ValueError as exc:
        return str(exc)
    return resolved


def _resolved(value: Any, defs: Mapping[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(value, list):
        return [_resolved(item, defs, seen) for item in value]
    if not isinstance(value, Mapping):
        return value
    reference = value.get("$ref")
    if reference is None:
        return {key: _resolved(sub, defs, seen) for key, sub in value.items()}
    name = reference.rsplit("/", 1)[-1] if isinstance(reference, str) else ""
    local = (f"#/$defs/{name}", f"#/definitions/{name}")
    if not isinstance(reference, str) or reference not in local:
        raise ValueError(f"$ref {reference!r}: only references to the schema's own $defs are taken")
    if name in seen or name not in defs:
        raise ValueError(f"$ref {reference!r} refers to itself or to nothing")
    rest = {key: sub for key, sub in value.items() if key != "$ref"}
    return {**_resolved(defs[name], defs, (*seen, name)), **_resolved(rest, defs, seen)}
