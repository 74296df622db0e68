"""Schema building blocks shared by every domain."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from billing_api.errors import Unprocessable

ItemT = TypeVar("ItemT")


class InputModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    def changes(self, *not_null: str) -> dict[str, Any]:
        """The fields the client sent (a PATCH). Those named in `not_null` may be left out but never
        set to null: 422 `field_required`."""
        sent = self.model_dump(exclude_unset=True)
        for field in not_null:
            if field in sent and sent[field] is None:
                raise Unprocessable(f"`{field}` cannot be null.", code="field_required", extra={"field": field})
        return sent


def example(**fields: Any) -> ConfigDict:
    """A model's example for the contract (request and response examples in openapi.json)."""
    return ConfigDict(json_schema_extra={"examples": [fields]})


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[ItemT]):
    """One page of a list. Pass `next_cursor` back as `cursor` for the next page; null means the end."""

    items: list[ItemT]
    next_cursor: str | None = None
