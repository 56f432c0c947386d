"""The business's HTTP tools: one `[[tools]]` table of a tools file read and checked at start-up.

What is checked here is what would otherwise fail while a customer waits: the name, the method,
where placeholders may go, the schema, the auth and its variables, the timeout. Messages say the
problem, never a secret nor the URL (which may carry one); `domain/tools_file.py` reads the file
and adds where.
"""

from __future__ import annotations

import base64
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dotenv import dotenv_values
from pydantic import SecretStr

from domain.tool_schemas import gemini_schema_problem

NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
ENVIRONMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# Headers the service sets itself, or that would change what the request is.
OWN_HEADERS = frozenset(
    {"accept", "authorization", "content-length", "content-type", "cookie", "host"}
    | {"transfer-encoding", "connection", "user-agent"}
)
RESERVED_NAMES = frozenset({"transfer_to_human", "offer_choices"})  # the service's own functions
KEYS = frozenset(
    {"name", "description", "method", "url", "timeout_seconds", "customer_header", "auth"}
    | {"parameters"}
)
AUTH_KEYS = {
    "bearer": ("token_env",),
    "basic": ("username_env", "password_env"),
    "header": ("name", "value_env"),
}
DEFAULT_TIMEOUT_SECONDS = 5.0
TIMEOUT_RANGE = (1.0, 30.0)
NO_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class Auth:
    """How a tool's requests prove who sends them; the secrets come from environment variables."""

    kind: str  # bearer, basic or header
    secrets: tuple[SecretStr, ...] = field(repr=False)
    header_name: str = "Authorization"

    def header(self) -> tuple[str, str]:
        """The header to send: `Authorization: Bearer …`, `Authorization: Basic …`, or the
        business's own header with its value."""
        values = [secret.get_secret_value() for secret in self.secrets]
        if self.kind == "bearer":
            return "Authorization", f"Bearer {values[0]}"
        if self.kind == "basic":
            pair = base64.b64encode(f"{values[0]}:{values[1]}".encode()).decode("ascii")
            return "Authorization", f"Basic {pair}"
        return self.header_name, values[0]


@dataclass(frozen=True, slots=True)
class HttpTool:
    """One endpoint of the business's API that Gemini may call as a function."""

    name: str
    description: str
    method: str  # GET or POST
    url: str  # may hold {placeholders}, each one of the parameters
    parameters: Mapping[str, Any] = field(default_factory=lambda: dict(NO_PARAMETERS))
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    customer_header: str | None = None
    auth: Auth | None = None

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(PLACEHOLDER.findall(self.url))


def read_tool(entry: Mapping[str, Any]) -> HttpTool:
    """One `[[tools]]` table as a tool, or ValueError saying what is wrong with it."""
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(
            "name must start with a letter or _ and hold only letters, digits and _ "
            "(at most 64 characters)"
        )
    if name in RESERVED_NAMES:
        raise ValueError(f"name {name} is the service's own function; choose another")
    description = entry.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("description must say what the tool does (Gemini reads it)")
    method = entry.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in ("GET", "POST"):
        raise ValueError("method must be GET or POST")
    parameters = parameters_of(entry.get("parameters", NO_PARAMETERS))
    url = _url(entry.get("url"), parameters)
    return HttpTool(
        name=name,
        description=description.strip(),
        method=method.upper(),
        url=url,
        parameters=parameters,
        timeout_seconds=timeout_of(entry.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)),
        customer_header=customer_header_of(entry.get("customer_header")),
        auth=auth_of(entry.get("auth")),
    )


def parameters_of(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise ValueError('parameters must be a JSON schema of type "object"')
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"parameters is not a valid JSON schema: {exc.message}") from None
    problem = gemini_schema_problem(schema)
    if problem is not None:
        raise ValueError(f"parameters: {problem}")
    return schema


def _url(given: Any, parameters: Mapping[str, Any]) -> str:
    if not isinstance(given, str) or not given.strip():
        raise ValueError("url is missing")
    url = given.strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("url must be an absolute http:// or https:// address")
    if "{" in parts.scheme or "{" in parts.netloc or "}" in parts.netloc:
        raise ValueError(
            "url has a placeholder in its scheme or host; only the path and the query may hold them"
        )
    if "@" in parts.netloc:
        raise ValueError("url carries a user name or password; use [tools.auth] instead")
    if parts.fragment or "#" in url:
        raise ValueError("url has a #fragment, which is never sent")
    declared = parameters.get("properties") or {}
    for placeholder in PLACEHOLDER.findall(url):
        if placeholder not in declared:
            raise ValueError(
                f"url placeholder {{{placeholder}}} is not among the parameters' properties"
            )
    if "{" in PLACEHOLDER.sub("", url) or "}" in PLACEHOLDER.sub("", url):
        raise ValueError("url has an unmatched { or }")
    return url


def timeout_of(value: Any) -> float:
    low, high = TIMEOUT_RANGE
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"timeout_seconds must be a number from {low:g} to {high:g}")
    return float(value)


def customer_header_of(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not HEADER_NAME.match(value):
        raise ValueError("customer_header must be a header name such as X-Customer")
    if value.lower() in OWN_HEADERS:
        raise ValueError(f"customer_header cannot be {value}, which the service sets itself")
    return value


def auth_of(value: Any) -> Auth | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("auth must be a table ([tools.auth], or [mcp.auth])")
    kind = value.get("type")
    if kind not in AUTH_KEYS:
        raise ValueError(f"auth type {kind!r} is unknown (bearer, basic or header)")
    needed = AUTH_KEYS[kind]
    unknown = sorted(set(value) - {"type", *needed})
    if unknown:
        raise ValueError(f"auth of type {kind} takes {', '.join(needed)}, not {unknown[0]!r}")
    header_name = "Authorization"
    if kind == "header":
        given = value.get("name")
        if not isinstance(given, str) or not HEADER_NAME.match(given):
            raise ValueError("auth name must be a header name such as X-Api-Key")
        header_name = given
        if header_name.lower() in OWN_HEADERS - {"authorization"}:
            raise ValueError(f"auth name cannot be {header_name}, which the service sets itself")
    variables = [key for key in needed if key.endswith("_env")]
    return Auth(kind, tuple(secret_of(value.get(key), key) for key in variables), header_name)


def secret_of(name: Any, key: str) -> SecretStr:
    """The value of the variable the file names, never echoed in an error."""
    if not isinstance(name, str) or not ENVIRONMENT_NAME.match(name):
        raise ValueError(f"auth {key} must be the NAME of an environment variable, not a secret")
    secret = os.environ.get(name) or dotenv_values(".env").get(name) or ""
    if not secret.strip():
        raise ValueError(f"auth {key} names {name}, which is not set")
    return SecretStr(secret.strip())
