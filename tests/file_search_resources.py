"""The fake File Search's resources as Google shows them: stores, documents, upload operations
and sessions, and a record of each request the fake answered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeDocument:
    name: str
    display_name: str
    mime_type: str
    content: bytes
    custom_metadata: list[dict[str, Any]]
    state: str = "STATE_PENDING"
    create_time: str | None = None  # None: Google gave none (left out of the JSON)

    @property
    def metadata(self) -> dict[str, str]:
        """The string-valued custom metadata, key -> value."""
        return {
            item["key"]: item["stringValue"]
            for item in self.custom_metadata
            if "stringValue" in item
        }

    def as_json(self) -> dict[str, Any]:
        body = {
            "name": self.name,
            "displayName": self.display_name,
            "customMetadata": self.custom_metadata,
            "state": self.state,
            "sizeBytes": str(len(self.content)),  # int64: a JSON string, like Google
            "mimeType": self.mime_type,
        }
        if self.create_time is not None:
            body.update(createTime=self.create_time, updateTime=self.create_time)
        return body


@dataclass
class FakeStore:
    name: str
    display_name: str
    create_time: str
    documents: dict[str, FakeDocument] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "displayName": self.display_name,
            "createTime": self.create_time,
            "updateTime": self.create_time,
        }
        counts = {
            "activeDocumentsCount": self._count("STATE_ACTIVE"),
            "pendingDocumentsCount": self._count("STATE_PENDING"),
            "failedDocumentsCount": self._count("STATE_FAILED"),
            "sizeBytes": sum(len(doc.content) for doc in self.documents.values()),
        }
        # proto3 JSON: int64 as strings, zero values left out
        body.update({key: str(value) for key, value in counts.items() if value})
        return body

    def _count(self, state: str) -> int:
        return sum(1 for doc in self.documents.values() if doc.state == state)


@dataclass
class FakeOperation:
    name: str
    store: str
    document: str
    polls_left: int
    error: str | None = None
    keep_failed_document: bool = False
    done: bool = False
    polls: int = 0


@dataclass
class UploadSession:
    store: str
    display_name: str
    mime_type: str
    custom_metadata: list[dict[str, Any]]
    declared_size: int
    received: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class Call:
    """One request the fake answered (the API key's presence only, never its value)."""

    method: str
    path: str
    query: str
    has_api_key: bool
    upload_command: str | None
