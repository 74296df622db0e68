"""Schema building blocks shared by every domain."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from billing_api.errors import Unprocessable

ItemT = TypeVar("ItemT")


def _integral_float_to_int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def json_int(**constraints: Any) -> Any:
    """An integer as JSON Schema defines one: 1.0 is the integer 1 (clients that build JSON from floats send
    it), while booleans, strings and 1.5 stay errors (STACK-NOTES trap 11). The constraints (ge, le, ...)
    come before the conversion so that the contract still shows them as minimum and maximum."""
    return Annotated[StrictInt, Field(**constraints), BeforeValidator(_integral_float_to_int)]


# Names must hold more than blanks: the schema says so (a JSON-Schema pattern finds one non-blank character), so a
# client generated from the contract never sends a name that the strip below would empty.
NOT_BLANK = r"\S"


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
