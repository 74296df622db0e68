"""Keyset (cursor) pagination: the cursor is an opaque token naming the last row's sort key."""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Query

from billing_api.errors import Unprocessable

MAX_LIMIT = 200


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: tuple[datetime, uuid.UUID] | None


async def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = 50,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page.")] = None,
) -> PageRequest:
    # async: FastAPI runs a plain `def` (or a class) dependency in a worker thread, a hop dearer than the work.
    return PageRequest(limit, decode_cursor(cursor) if cursor else None)


Paging = Annotated[PageRequest, Depends(page_request)]


def encode_cursor(*key: Any) -> str:
    parts = [value.isoformat() if isinstance(value, datetime) else str(value) for value in key]
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


# What encode_cursor writes: unpadded URL-safe base64, nothing else (no NUL, space, padding or `+/`).
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]+")
# PostgreSQL text cannot hold NUL or a lone surrogate, so no key we issued contains one. Other control characters
# are refused by the strict parse of timestamps, ids and numbers; a name keeps them (a display name may hold a tab).
_NEVER_IN_A_KEY = re.compile(r"[\x00\ud800-\udfff]")
_BIGINT_MAX = 2**63 - 1


def _decode(cursor: str, first: Callable[[str], Any], second: Callable[[str], Any] = uuid.UUID) -> tuple[Any, Any]:
    """Strict: the cursor must be exactly what encode_cursor writes for the key it decodes to (one spelling per
    key), so trailing garbage, other base64 spellings, JSON whitespace and non-canonical values are refused."""
    try:
        if not _CURSOR_TEXT.fullmatch(cursor):
            raise ValueError("not unpadded URL-safe base64")
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8"))
        if not (isinstance(parts, list) and len(parts) == 2 and all(isinstance(part, str) for part in parts)):
            raise TypeError("not a list of two strings")
        if any(_NEVER_IN_A_KEY.search(part) for part in parts):
            raise ValueError("a character no key holds")
        key = first(parts[0]), second(parts[1])
        if encode_cursor(*key) != cursor:
            raise ValueError("not the cursor this key is written as")
        return key
    except (ValueError, TypeError, OverflowError):  # binascii, UnicodeDecode and JSONDecode errors are ValueErrors
        raise Unprocessable("The cursor is not one this API issued.", code="invalid_cursor") from None


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A (timestamp, id) key. Anything else is a 422 with code `invalid_cursor`."""
    return _decode(cursor, _aware_timestamp)


def _aware_timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:  # every cursor we issue carries its UTC offset
        raise ValueError("naive timestamp")
    value.astimezone(UTC)  # OverflowError at the ends of the calendar (year 1 at +05:00), before the database sees it
    return value


def _bigint(text: str) -> int:
    value = int(text)
    if not 0 <= value <= _BIGINT_MAX:  # positions and transaction ids are positive bigints
        raise ValueError("out of range")
    return value


def decode_name_cursor(cursor: str) -> tuple[str, uuid.UUID]:
    """A (name, id) key, for lists ordered by name."""
    return _decode(cursor, str)


def decode_position_cursor(cursor: str) -> tuple[int, int]:
    """A key of two integers, for a feed ordered by position rather than time."""
    return _decode(cursor, _bigint, _bigint)


def next_cursor(rows: list[Any], limit: int, key: str = "created_at") -> str | None:
    """Rows were fetched with limit + 1: an extra row means there is a next page, after the row at `limit`."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(getattr(last, key), last.id)
