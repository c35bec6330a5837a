"""Typed rows <-> MongoDB documents.

Exactly what the SQL tables hold, so both backends hand back equal rows:

- ids are native BSON UUIDs (``uuidRepresentation="standard"``); a row's ``id`` is the
  document's ``_id``;
- times are integer **microseconds** since the Unix epoch (UTC), not BSON dates: a BSON
  date keeps milliseconds, and the propagation rules and the orderings compare
  timestamps to the microsecond, as SQL stores them;
- an error's ``context`` is JSON text: span attribute names contain dots, which MongoDB
  field names may not (FerretDB refuses them outright).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from otel_diag.timewindow import as_utc

T = TypeVar("T")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
TIME_FIELDS = frozenset(
    {
        "started_at",
        "ended_at",
        "created_at",
        "last_span_at",
        "diagnosis_claimed_at",
        "diagnosed_at",
    }
)
JSON_TEXT_FIELDS = frozenset({"context"})


def to_us(value: datetime) -> int:
    """A datetime as microseconds since the epoch (naive = UTC)."""
    return (as_utc(value) - EPOCH) // _US


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(value))


def values(row: Any) -> dict[str, Any]:
    """A projected or typed row as a plain dict of its fields (a dict is copied)."""
    if isinstance(row, Mapping):
        return dict(row)
    return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}


def with_changes(row: Any, **changes: Any) -> Any:
    """``row`` with ``changes`` (a dict row is updated in place, a frozen one replaced)."""
    if isinstance(row, dict):
        row.update(changes)
        return row
    return dataclasses.replace(row, **changes)


def to_doc(row: Any) -> dict[str, Any]:
    """The document that stores ``row``."""
    doc: dict[str, Any] = {}
    for key, value in values(row).items():
        if key == "id":
            key = "_id"
        if value is None:
            doc[key] = None
        elif key in TIME_FIELDS:
            doc[key] = to_us(value)
        elif key in JSON_TEXT_FIELDS:
            doc[key] = json.dumps(value)
        elif isinstance(value, tuple | list):
            doc[key] = [dict(v) if isinstance(v, Mapping) else v for v in value]
        elif isinstance(value, str) and type(value) is not str:
            doc[key] = str(value)  # StrEnum members as their plain text
        else:
            doc[key] = value
    return doc


def from_value(key: str, value: Any) -> Any:
    """One stored value as the row holds it."""
    if value is None:
        return None
    if key in TIME_FIELDS:
        return from_us(value)
    if key in JSON_TEXT_FIELDS:
        return json.loads(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def typed(cls: type[T], doc: Mapping[str, Any]) -> T:
    """A typed row from a document (fields the document lacks keep their defaults)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = "_id" if f.name == "id" else f.name
        if key in doc:
            out[f.name] = from_value(f.name, doc[key])
    return cls(**out)


def plain(key: str, value: Any) -> Any:
    """A stored value as JSON-ready text/number, the way the SQL reports render it."""
    if value is None:
        return None
    if key in TIME_FIELDS:
        return from_us(value).isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
