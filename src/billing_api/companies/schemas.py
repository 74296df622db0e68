from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, Field, StringConstraints

from billing_api.schemas import NOT_BLANK, InputModel, ReadModel, example


def _known_time_zone(name: str) -> str:
    if name not in _time_zones():
        raise ValueError(f"unknown IANA time zone {name!r}")
    return name


_zones: set[str] = set()


def _time_zones() -> set[str]:
    if not _zones:
        _zones.update(available_timezones())
    return _zones


TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_known_time_zone)]
CompanyName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK)]


class CompanyCreate(InputModel):
    """A child company under a parent that the caller administers."""

    model_config = example(
        name="West EMS North", parent_id="c0a8f1e2-7b3d-4e5f-8a9b-1c2d3e4f5a60", time_zone="America/Denver",
    )

    name: CompanyName
    parent_id: uuid.UUID
    time_zone: TimeZone = "UTC"


class CompanyUpdate(InputModel):
    model_config = example(name="Maple Street Clinic", time_zone="America/Toronto")

    name: CompanyName | None = None
    time_zone: TimeZone | None = None
    parent_id: uuid.UUID | None = Field(
        default=None,
        description="Move a company under another top-level company, or null to detach a child company. Two "
                    "levels: the new parent must be top-level and the company must have no children (422 "
                    "`company_depth_exceeded`); a company can never sit under itself (422 `company_cycle`). "
                    "Needs a company administrator of the company, of its current parent and of the new one. "
                    "Billing customer assignments naming a moved company are removed.",
    )


class CompanyRead(ReadModel):
    id: uuid.UUID
    name: str
    parent_id: uuid.UUID | None
    time_zone: str
    billing_segregation_enabled: bool
    created_at: datetime


class CompanyList(ReadModel):
    items: list[CompanyRead]
