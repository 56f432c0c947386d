"""OpenAPI 3 schema objects as JSON Schema 2020-12: the few places where OpenAPI means more than
a JSON Schema validator reads (composition by `allOf`, `discriminator`, `nullable`)."""

from __future__ import annotations

import copy
from typing import Any

SCHEMAS = "#/components/schemas/"
BASES = "x-json-schema-bases"  # a discriminating schema without its discriminator
VARIANTS = "x-json-schema-variants"  # a mapped schema that extends its discriminating base
# Where a schema object holds other schemas (the rest of its keywords hold values or annotations)
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_VALUES = (
    "items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
    "unevaluatedItems", "unevaluatedProperties",
)  # fmt: skip


def as_json_schema(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of an OpenAPI document whose `components.schemas` a JSON Schema 2020-12 validator
    reads as OpenAPI means them. `$ref`s into the document keep working: the copy is one resource.

    - `allOf` composes one object: a part's `additionalProperties: false` closes the whole
      (`unevaluatedProperties: false` on the schema holding the `allOf`), not the part alone,
      which in JSON Schema would refuse every property its sibling parts declare.
    - `discriminator.mapping`: an instance whose property has a mapped value must also be valid
      against the mapped schema (JSON Schema ignores the keyword). A mapped schema that extends
      the discriminating one (`allOf: [{$ref: base}, ...]`) is checked against the base without
      its discriminator, so that the two do not refer to each other forever.
    - `nullable: true` (OpenAPI 3.0) also allows null.
    """
    result = copy.deepcopy(document)
    schemas: dict[str, Any] = result.get("components", {}).get("schemas", {})
    for schema in schemas.values():
        _convert(schema)
    bases = {name: _without_discriminator(schema) for name, schema in schemas.items()}
    extended: dict[str, str] = {}  # mapped schema -> the discriminating base it extends
    for name, schema in schemas.items():
        mapping = schema.get("discriminator", {}).get("mapping")
        if not isinstance(mapping, dict):
            continue
        branches = []
        for value, target in mapping.items():
            target_name = target.removeprefix(SCHEMAS)
            if _extends(schemas.get(target_name, {}), name):
                extended[target_name] = name
                target = f"#/{VARIANTS}/{target_name}"
            branches.append(_when(schema["discriminator"]["propertyName"], value, target))
        schema["allOf"] = [*schema.get("allOf", []), *branches]
    variants = {target: _rebased(schemas[target], base) for target, base in extended.items()}
    result[BASES] = bases
    result[VARIANTS] = variants
    return result


def _convert(schema: Any) -> None:
    """Close `allOf` compositions and widen `nullable` types, in place, in `schema` and every
    schema below it."""
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):
            for child in value.values():
                _convert(child)
        elif key in SCHEMA_LISTS and isinstance(value, list):
            for child in value:
                _convert(child)
        elif key in SCHEMA_VALUES:
            _convert(value)
    if schema.pop("nullable", False) is True and isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    closed = False
    for part in schema.get("allOf", []):
        if isinstance(part, dict) and part.get("additionalProperties") is False:
            del part["additionalProperties"]
            closed = True
    if closed:
        schema["unevaluatedProperties"] = False


def _without_discriminator(schema: dict[str, Any]) -> dict[str, Any]:
    base = copy.deepcopy(schema)
    base.pop("discriminator", None)
    return base


def _extends(schema: dict[str, Any], base: str) -> bool:
    return any(part.get("$ref") == SCHEMAS + base for part in schema.get("allOf", []))


def _rebased(schema: dict[str, Any], base: str) -> dict[str, Any]:
    """The mapped schema with its `$ref` to the discriminating base pointed at the base's copy
    without a discriminator."""
    variant = copy.deepcopy(schema)
    variant["allOf"] = [
        {"$ref": f"#/{BASES}/{base}"} if part.get("$ref") == SCHEMAS + base else part
        for part in variant["allOf"]
    ]
    return variant


def _when(prop: str, value: str, target_ref: str) -> dict[str, Any]:
    return {
        "if": {"properties": {prop: {"const": value}}, "required": [prop]},
        "then": {"$ref": target_ref},
    }
