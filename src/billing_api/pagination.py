"""Keyset (cursor) pagination: the cursor is an opaque token naming the last row's sort key."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Query

from billing_api.errors import Unprocessable

MAX_LIMIT = 200


class PageRequest:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = 50,
        cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page.")] = None,
    ) -> None:
        self.limit = limit
        self.after = decode_cursor(cursor) if cursor else None


Paging = Annotated[PageRequest, Depends()]


def encode_cursor(*key: Any) -> str:
    parts = [value.isoformat() if isinstance(value, datetime) else str(value) for value in key]
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode(cursor: str, first: Callable[[str], Any], second: Callable[[str], Any] = uuid.UUID) -> tuple[Any, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, row_id = json.loads(raw)
        if not isinstance(key, str):
            raise TypeError
        return first(key), second(row_id)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise Unprocessable("The cursor is not one this API issued.", code="invalid_cursor") from None


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A (timestamp, id) key. Anything else is a 422 with code `invalid_cursor`."""
    return _decode(cursor, _aware_timestamp)


def _aware_timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:  # every cursor we issue carries its UTC offset
        raise ValueError("naive timestamp")
    return value


def decode_name_cursor(cursor: str) -> tuple[str, uuid.UUID]:
    """A (name, id) key, for lists ordered by name."""
    return _decode(cursor, str)


def decode_position_cursor(cursor: str) -> tuple[int, int]:
    """A key of two integers, for a feed ordered by position rather than time."""
    return _decode(cursor, int, int)


def next_cursor(rows: list[Any], limit: int, key: str = "created_at") -> str | None:
    """Rows were fetched with limit + 1: an extra row means there is a next page, after the row at `limit`."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(getattr(last, key), last.id)
