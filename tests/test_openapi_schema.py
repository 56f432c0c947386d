"""openapi_schema.py: OpenAPI schema objects read by a JSON Schema 2020-12 validator as OpenAPI
means them (`allOf` composing one object, `discriminator`, `nullable`)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from openapi_schema import as_json_schema
from referencing import Registry
from referencing.jsonschema import DRAFT202012

URI = "urn:test:openapi"
DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "components": {
        "schemas": {
            "Base": {"type": "object", "required": ["kind"], "properties": {"kind": {}}},
            "Closed": {
                "allOf": [
                    {"$ref": "#/components/schemas/Base"},
                    {"additionalProperties": False, "properties": {"size": {"type": "integer"}}},
                ]
            },
            "Pet": {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"type": "string"}},
                "discriminator": {
                    "propertyName": "kind",
                    "mapping": {
                        "cat": "#/components/schemas/Cat",
                        "dog": "#/components/schemas/Dog",
                    },
                },
            },
            "Cat": {
                "allOf": [
                    {"$ref": "#/components/schemas/Pet"},
                    {"required": ["meows"], "properties": {"meows": {"type": "boolean"}}},
                ]
            },
            "Dog": {"required": ["barks"], "properties": {"barks": {"type": "boolean"}}},
            "Note": {"type": "string", "nullable": True},
        }
    },
}


def errors(name: str, instance: Any, document: dict[str, Any]) -> list[str]:
    registry: Registry[Any] = Registry().with_resource(URI, DRAFT202012.create_resource(document))
    validator = Draft202012Validator(
        {"$ref": f"{URI}#/components/schemas/{name}"}, registry=registry
    )
    return [error.message for error in validator.iter_errors(instance)]


def test_a_closed_part_of_an_allof_closes_the_whole_not_itself() -> None:
    converted = as_json_schema(DOCUMENT)
    assert errors("Closed", {"kind": "a", "size": 1}, converted) == []
    assert errors("Closed", {"kind": "a", "size": 1, "colour": "red"}, converted) == [
        "Unevaluated properties are not allowed ('colour' was unexpected)"
    ]
    # Read as plain JSON Schema, the part refuses what its sibling declares:
    assert errors("Closed", {"kind": "a", "size": 1}, DOCUMENT) == [
        "Additional properties are not allowed ('kind' was unexpected)"
    ]


def test_a_discriminator_checks_the_mapped_schema_even_one_that_extends_it() -> None:
    converted = as_json_schema(DOCUMENT)
    assert errors("Pet", {"kind": "cat", "meows": True}, converted) == []
    assert errors("Pet", {"kind": "cat"}, converted) == ["'meows' is a required property"]
    assert errors("Pet", {"kind": "dog", "barks": "loud"}, converted) == [
        "'loud' is not of type 'boolean'"
    ]
    assert errors("Pet", {"kind": "fish"}, converted) == []  # not mapped: the base alone
    # Cat directly: its own part, and Pet's discriminator sending it back to Cat, say it twice
    assert set(errors("Cat", {"kind": "cat"}, converted)) == {"'meows' is a required property"}
    assert errors("Pet", {"kind": "cat"}, DOCUMENT) == []  # JSON Schema ignores the keyword


def test_nullable_allows_null_and_the_document_is_left_as_it_was() -> None:
    converted = as_json_schema(DOCUMENT)
    assert errors("Note", None, converted) == []
    assert errors("Note", 5, converted) == ["5 is not of type 'string', 'null'"]
    assert DOCUMENT["components"]["schemas"]["Note"] == {"type": "string", "nullable": True}
