"""The bodies the webhook fuzzing sends: Meta-shaped payloads Hypothesis breaks in every way a body
can be broken (wrong types, truncation, huge and deep values, odd Unicode, raw bytes)."""

from __future__ import annotations

import json
import random
import string
import time
from typing import Any

from helpers import PHONE_NUMBER_ID
from hypothesis import strategies as st

from main import MAX_BODY_BYTES

# --- Generators ---------------------------------------------------------------------------------
#
# Hypothesis makes each decision that shapes a body: the kind of breakage, the position in the
# document that is broken, the value put there, the bytes. The many field values of the
# Meta-shaped payload under it come from a `random.Random` that Hypothesis seeds: drawn one by
# one through Hypothesis they cost about 10 ms an example, too slow for 10,000 a database.

AWKWARD = [
    "",
    " ",
    "0",
    "-1",
    "1e999",
    "NaN",
    "null",
    "true",
    "{}",
    "[]",
    '"',
    "\\",
    "\r\n",
    "%s%n",
    "' OR 1=1 --",
    "<script>",
    PHONE_NUMBER_ID,
    "16505551234",
    "US.13491208655302741918",
    "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
    "Olá, café?",
    "\u202eevil",
    "👍🏽",
    "٣٤٥",
    "\U0010ffff",
    "\ufeff",
    "x" * 255,
    "y" * 256,
]
NUMBERS: list[Any] = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 0.5, -0.0, 1e308, True]
KINDS = [*["text"] * 6, "image", "audio", "video", "document", "sticker", "location", "contacts"]
KINDS += ["interactive", "button", "reaction", "order", "system", "unsupported", "hologram"]


def text(rnd: random.Random) -> str:
    roll = rnd.random()
    if roll < 0.4:
        return rnd.choice(AWKWARD)
    if roll < 0.6:
        return "".join(rnd.choices(string.printable, k=rnd.randrange(12)))
    if roll < 0.8:  # any code point but NUL and the surrogates (those: the unicode mode)
        planes = (0x250, 0xD800, 0x110000)
        points = [rnd.randrange(1, rnd.choice(planes)) for _ in range(rnd.randrange(10))]
        return "".join(chr(p if not 0xD800 <= p < 0xE000 else p + 0x800) for p in points)
    return str(rnd.randrange(10**16))


def digits(rnd: random.Random) -> str:
    return rnd.choice(["16505551234", "0", "1" * 20, str(rnd.randrange(10**15))])


def leaf(rnd: random.Random) -> Any:
    roll = rnd.random()
    if roll < 0.5:
        return text(rnd)
    if roll < 0.8:
        return rnd.choice(NUMBERS) if rnd.random() < 0.5 else rnd.uniform(-1e6, 1e6)
    return rnd.choice([None, True, False, [], {}])


def value_of(rnd: random.Random, depth: int = 2) -> Any:
    roll = rnd.random()
    if depth <= 0 or roll < 0.6:
        return leaf(rnd)
    if roll < 0.8:
        return [value_of(rnd, depth - 1) for _ in range(rnd.randrange(3))]
    return {text(rnd): value_of(rnd, depth - 1) for _ in range(rnd.randrange(3))}


def timestamp(rnd: random.Random) -> Any:
    roll = rnd.random()
    if roll < 0.5:
        return str(int(time.time()) - rnd.randrange(0, 200_000))
    if roll < 0.7:
        return str(rnd.randrange(2**34))
    if roll < 0.8:
        return rnd.randrange(2**34)
    return leaf(rnd)


def kind_body(rnd: random.Random, kind: str) -> Any:
    """What Meta puts under the message's `type` key, with random values."""
    if kind == "text":
        return {"body": text(rnd)}
    if kind in ("image", "audio", "video", "document", "sticker"):
        body = {"id": digits(rnd), "mime_type": rnd.choice(["image/jpeg", "audio/ogg", text(rnd)])}
        if rnd.random() < 0.5:
            body["caption"] = text(rnd)
        if rnd.random() < 0.2:
            body["voice"] = leaf(rnd)
        return body
    if kind == "location":
        return {"latitude": leaf(rnd), "longitude": leaf(rnd), "name": text(rnd)}
    if kind == "contacts":
        return [
            {"name": {"formatted_name": text(rnd)}, "phones": [{"phone": leaf(rnd)}]}
            for _ in range(rnd.randrange(3))
        ]
    if kind == "interactive":
        reply = rnd.choice(["button_reply", "list_reply"])
        return {"type": reply, reply: {"id": text(rnd), "title": text(rnd)}}
    if kind == "button":
        return {"text": text(rnd), "payload": text(rnd)}
    if kind == "reaction":
        return {"message_id": text(rnd), "emoji": text(rnd)}
    if kind == "order":
        items = [{"quantity": leaf(rnd), "item_price": leaf(rnd), "currency": text(rnd)}]
        return {"product_items": items * rnd.randrange(3), "text": text(rnd)}
    return value_of(rnd)


def message(rnd: random.Random) -> dict[str, Any]:
    kind = rnd.choice(KINDS)
    sender = digits(rnd) if rnd.random() < 0.8 else text(rnd)
    message_id = f"wamid.{rnd.randrange(10**12)}" if rnd.random() < 0.7 else text(rnd)
    found: dict[str, Any] = {
        "from": sender,
        "id": message_id,
        "timestamp": timestamp(rnd),
        "type": kind,
        kind: kind_body(rnd, kind),
    }
    if rnd.random() < 0.2:
        found["context"] = {"from": digits(rnd), "id": text(rnd)}
    if rnd.random() < 0.1:
        found["from_user_id"] = text(rnd)
    return found


def status(rnd: random.Random) -> dict[str, Any]:
    found = {
        "id": text(rnd),
        "status": rnd.choice(["sent", "delivered", "read", "failed", text(rnd)]),
        "timestamp": timestamp(rnd),
        "recipient_id": digits(rnd),
    }
    if rnd.random() < 0.5:
        found["errors"] = [{"code": leaf(rnd), "title": text(rnd)}]
    return found


def meta_payload(rnd: random.Random) -> dict[str, Any]:
    """A payload of Meta's shape (entries, changes, messages, statuses) with random values.

    About half is for this service's number: that is what is recorded and answered.
    """

    def value() -> dict[str, Any]:
        number = PHONE_NUMBER_ID if rnd.random() < 0.5 else rnd.choice(["1065", digits(rnd)])
        contacts = [{"profile": {"name": text(rnd)}, "wa_id": digits(rnd)}]
        if rnd.random() < 0.1:
            contacts[0]["user_id"] = text(rnd)
        return {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": number},
            "contacts": contacts[: rnd.randrange(3)],
            "messages": [message(rnd) for _ in range(rnd.choice([0, 1, 1, 1, 2, 3]))],
            "statuses": [status(rnd) for _ in range(rnd.choice([0, 0, 1, 2]))],
        }

    entries = [
        {
            "id": digits(rnd),
            "changes": [
                {"field": rnd.choice(["messages"] * 5 + ["account_update"]), "value": value()}
                for _ in range(rnd.choice([1, 1, 2]))
            ],
        }
        for _ in range(rnd.choice([1, 1, 1, 2, 0]))
    ]
    return {"object": rnd.choice(["whatsapp_business_account"] * 9 + ["page"]), "entry": entries}


# What replaces a node of the document: every JSON type, drawn by Hypothesis (its integers,
# floats and strings find the edges: 2**64, -0.0, NaN, 1e308, NUL, odd code points).
json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.just("")
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in a JSON document, the root included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += paths(child, (*prefix, index))
    return found


def replaced(node: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy: Any = dict(node) if isinstance(node, dict) else list(node)
    copy[path[0]] = replaced(node[path[0]], path[1:], new)
    return copy


SPLICE = "@@splice-7f3a@@"


def dumps(payload: Any, ascii_only: bool) -> bytes:
    """JSON as Meta sends it (non-ASCII escaped), or raw UTF-8, even with lone surrogates."""
    return json.dumps(payload, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def webhook_bodies(draw: st.DrawFn) -> bytes:
    """Valid Meta payloads, then the same broken in every way a body can be broken."""
    mode = draw(
        st.sampled_from(
            [
                "valid",
                "valid",
                "wrong-type",
                "truncated",
                "huge",
                "deep",
                "unicode",
                "bytes",
                "json",
            ]
        )
    )
    if mode == "bytes":
        return draw(st.binary(max_size=512))
    if mode == "json":
        return dumps(draw(json_values), draw(st.booleans()))
    payload = meta_payload(draw(st.randoms(use_true_random=True)))
    spots = paths(payload)
    spot = spots[draw(st.integers(0, len(spots) - 1))]
    ascii_only = draw(st.booleans())
    if mode == "wrong-type":  # any position, any other value (types mostly differ)
        payload = replaced(payload, spot, draw(json_values))
    elif mode == "unicode":  # lone surrogates and NULs too (escaped, as JSON carries them)
        payload = replaced(payload, spot, draw(st.text(st.characters(exclude_categories=[]))))
    elif mode == "huge":  # the largest rarely: they cost time to make, sign and send
        size = draw(st.sampled_from([300, 5000, 70_000, 70_000, 70_000, 1_000_000, MAX_BODY_BYTES]))
        char = draw(st.sampled_from("xé👍")) if size < 100_000 else "x"
        payload = replaced(payload, spot, char * size)
    elif mode in ("deep", "truncated"):
        payload = replaced(payload, spot, SPLICE)
    body = dumps(payload, ascii_only)
    if mode == "deep":
        depth = draw(st.integers(1, 1100) | st.sampled_from([5_000, 100_000]))
        opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        core = "0" if opening == "[" else "null"
        nested = (opening * depth + core + closing * depth).encode()
        body = body.replace(f'"{SPLICE}"'.encode(), nested, 1)
    elif mode == "truncated":
        body = body.replace(f'"{SPLICE}"'.encode(), b'"', 1)
        body = body[: draw(st.integers(0, len(body)))]
    return body
