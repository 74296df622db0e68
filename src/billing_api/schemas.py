"""Schema building blocks shared by every domain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, StrictInt
from pydantic_core import PydanticCustomError, core_schema

from billing_api.errors import Unprocessable

ItemT = TypeVar("ItemT")


def _integral_float_to_int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def json_int(**constraints: Any) -> Any:
    """An integer as JSON Schema defines one: 1.0 is the integer 1 (clients that build JSON from floats send
    it), while booleans, strings and 1.5 stay errors (docs/stack-notes.md, trap 11). The constraints (ge, le, ...)
    come before the conversion so that the contract still shows them as minimum and maximum."""
    return Annotated[StrictInt, Field(**constraints), BeforeValidator(_integral_float_to_int)]


# The bounds of what a client may send, one per concept (docs/integrators.md). The contract shows each as
# maxLength / maxItems / maximum, and validation refuses anything over it with 422 `validation_error`.
EMAIL_MAX_LENGTH = 254  # the longest address SMTP can deliver to (RFC 5321 path, less its brackets)
SEARCH_MAX_LENGTH = 100
# The longest text the UUID parser accepts (`urn:uuid:` and 36 characters): longer text is never a UUID, so
# contract.py shows this bound on every `format: uuid` string without a validator of its own.
UUID_TEXT_MAX_LENGTH = 45
DATE_MAX_LENGTH = 10  # an RFC 3339 full-date, 2025-01-31
DATETIME_MAX_LENGTH = 40  # 2025-01-31T09:30:00.123456789+05:30 is 35
INT32_MAX = 2**31 - 1  # an `Integer` column


@dataclass(frozen=True)
class TextBound:
    """At most `max_length` characters of text before parsing: dates and times parse digits without end
    (2025-01-31T09:30:00.000...Z), so their length is checked here, and shown in the contract as maxLength."""

    max_length: int

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: Any) -> dict[str, Any]:
        return handler(schema) | {"maxLength": self.max_length}

    def _check(self, value: Any) -> Any:
        if isinstance(value, str) and len(value) > self.max_length:
            raise PydanticCustomError("string_too_long", "String should have at most {max_length} characters",
                                      {"max_length": self.max_length})
        return value


Email = Annotated[EmailStr, Field(max_length=EMAIL_MAX_LENGTH)]
Day = Annotated[date, TextBound(DATE_MAX_LENGTH)]
Moment = Annotated[datetime, TextBound(DATETIME_MAX_LENGTH)]
AwareMoment = Annotated[AwareDatetime, TextBound(DATETIME_MAX_LENGTH)]

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
