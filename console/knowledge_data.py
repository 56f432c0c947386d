"""The Knowledge page's view of a business's documents: its types, and the interface it uses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from documents.sync import MAX_FILE_BYTES, MIME_TYPES

__all__ = [
    "NOT_SET_UP",
    "EmptyKnowledgeData",
    "KnowledgeData",
    "KnowledgeDocument",
    "KnowledgeRefused",
]

NOT_SET_UP = "Documents are not set up on this deployment."


@dataclass(frozen=True, slots=True)
class KnowledgeDocument:
    """One document of a business's File Search store, as the page lists it."""

    name: str  # opaque id (Google's document name, "fileSearchStores/x/documents/y"); no title
    title: str  # the file's name, what the operator sees
    state: Literal["active", "pending", "failed"]
    size_bytes: int
    created: float | None  # epoch seconds, when known
    source: Literal["folder", "console"]  # synchronised from the folder, or uploaded here


class KnowledgeRefused(Exception):
    """Google (or the deployment) refused or could not be reached; `reason` is a sentence the
    page shows the operator as it is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KnowledgeData(Protocol):
    """The documents the Knowledge page lists, uploads and deletes.

    Access (which operator may act for which business) is the console's job, not this one's;
    the console hands `upload` only data it checked: at most `max_upload_bytes()`, an extension
    of `allowed_types()`, and that extension's MIME type.
    """

    def business_names(self) -> list[str]:
        """The businesses that may have documents, in display order."""
        ...

    def max_upload_bytes(self) -> int:
        """The largest document the page accepts, in bytes."""
        ...

    def allowed_types(self) -> Mapping[str, str]:
        """The extensions the page accepts (lowercase, with the dot: ".pdf") and their MIME
        types."""
        ...

    async def documents(self, business: str) -> list[KnowledgeDocument]:
        """Every document of the business's store (none when it has no store yet); raises
        KnowledgeRefused when Google cannot be reached."""
        ...

    async def upload(self, business: str, filename: str, data: bytes, mime_type: str) -> None:
        """Add `data` to the business's store as an operator's document titled `filename`;
        raises KnowledgeRefused with the reason when it cannot."""
        ...

    async def delete(self, business: str, document_name: str) -> None:
        """Delete the document `document_name` of the business's store; raises KnowledgeRefused
        with the reason when it cannot (a name outside that store included)."""
        ...


class EmptyKnowledgeData:
    """No documents, and uploads refused: the page on a deployment without File Search."""

    def __init__(self, businesses: Iterable[str] = ()) -> None:
        self._businesses = list(businesses)

    def business_names(self) -> list[str]:
        return list(self._businesses)

    def max_upload_bytes(self) -> int:
        return MAX_FILE_BYTES

    def allowed_types(self) -> Mapping[str, str]:
        return MIME_TYPES

    async def documents(self, business: str) -> list[KnowledgeDocument]:
        return []

    async def upload(self, business: str, filename: str, data: bytes, mime_type: str) -> None:
        raise KnowledgeRefused(NOT_SET_UP)

    async def delete(self, business: str, document_name: str) -> None:
        raise KnowledgeRefused(NOT_SET_UP)
