from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, Field, StringConstraints

from billing_api.models import DiagnosisCodeSystem, ServiceCodeSystem
from billing_api.schemas import NOT_BLANK, InputModel, ReadModel, example, json_int


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

# What a company may choose: `legacy` is what a company that never chose keeps, not a system to choose.
ChosenServiceSystem = Literal["cpt", "hcpcs", "ohip", "ahcip", "msp"]
_SERVICE_SYSTEMS = ("The service code systems the company's people bill in (`cpt`, `hcpcs`, `ohip`, `ahcip`, `msp`): "
                    "a line with a code of another system is refused (422 `code_system_not_used`).")
_DIAGNOSIS_SYSTEMS = ("The diagnosis code systems the company's people use (`icd10cm`, `ohip_dx`): a diagnosis of "
                      "another system is refused (422 `code_system_not_used`).")

_DORMANT_DAYS = ("Access reviews: a grant to a provider's bills unused for longer than this many days is dormant "
                 "(default 90).")
_INTERVAL_DAYS = ("Access reviews: a provider whose access was last confirmed longer than this many days ago, or "
                  "never, is overdue, and is reminded by email once per interval (default 90).")


class CompanyCreate(InputModel):
    """A child company under a parent that the caller administers."""

    model_config = example(
        name="West EMS North", parent_id="c0a8f1e2-7b3d-4e5f-8a9b-1c2d3e4f5a60", time_zone="America/Denver",
    )

    name: CompanyName
    parent_id: uuid.UUID
    time_zone: TimeZone = "UTC"


class CompanyUpdate(InputModel):
    model_config = example(name="Maple Street Clinic", time_zone="America/Toronto", service_code_systems=["ohip"],
                           diagnosis_code_systems=["ohip_dx"])

    name: CompanyName | None = None
    time_zone: TimeZone | None = None
    service_code_systems: list[ChosenServiceSystem] | None = Field(
        default=None, min_length=1, max_length=5, description=_SERVICE_SYSTEMS + " Once chosen, it can be changed "
        "but not unset; until then every system is accepted, and the five characters [0-9A-Z] lines took before "
        "code systems (`legacy`).")
    diagnosis_code_systems: list[DiagnosisCodeSystem] | None = Field(
        default=None, min_length=1, max_length=2, description=_DIAGNOSIS_SYSTEMS + " Until chosen, both are "
        "accepted.")
    access_review_dormant_days: json_int(ge=7, le=730, description=_DORMANT_DAYS) | None = None
    access_review_interval_days: json_int(ge=7, le=366, description=_INTERVAL_DAYS) | None = None
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
    service_code_systems: list[ServiceCodeSystem] | None = Field(
        description=_SERVICE_SYSTEMS + " Null: never chosen (every system, and `legacy`).")
    diagnosis_code_systems: list[DiagnosisCodeSystem] | None = Field(
        description=_DIAGNOSIS_SYSTEMS + " Null: never chosen (both).")
    access_review_dormant_days: int = Field(description=_DORMANT_DAYS)
    access_review_interval_days: int = Field(description=_INTERVAL_DAYS)
    created_at: datetime


class CompanyList(ReadModel):
    items: list[CompanyRead]
