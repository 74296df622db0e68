from __future__ import annotations

import enum
import uuid

from pydantic import Field

from billing_api.schemas import InputModel, ReadModel, example


class CompanyIdsSet(InputModel):
    """The complete set of child companies (replaces what was there)."""

    model_config = example(company_ids=["5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"])

    company_ids: list[uuid.UUID] = Field(max_length=1000, description="Child companies of the home company.")


class GroupAssignment(ReadModel):
    company_id: uuid.UUID
    company_name: str
    assigned: bool = Field(description="Every member of the group reaches this child company.")


class GroupAssignmentsRead(ReadModel):
    """Every child company of the group's company, and whether the group (role) selects it."""

    group_id: uuid.UUID
    group_name: str
    company_id: uuid.UUID = Field(description="The group's company (the parent).")
    items: list[GroupAssignment]


class SourceType(enum.StrEnum):
    role = "role"
    direct = "direct"
    company_admin = "company_admin"


class AssignmentSource(ReadModel):
    type: SourceType = Field(description="`role` (a group of the user), `direct`, or `company_admin`.")
    group_id: uuid.UUID | None = Field(default=None, description="For `role`: the group that gives it.")
    group_name: str | None = None


class UserAssignment(ReadModel):
    company_id: uuid.UUID
    company_name: str
    reached: bool = Field(description="The user reaches this child company (its bills, patients, records).")
    sources: list[AssignmentSource] = Field(description="Why: each role, a direct assignment, company admin.")
    removable: bool = Field(description="False when a role or company administration gives it: it cannot be "
                                        "unchecked here.")


class UserAssignmentsRead(ReadModel):
    """Every child company of the user's home company, checked (reached) or not."""

    user_id: uuid.UUID
    company_id: uuid.UUID = Field(description="The user's home company (the parent).")
    items: list[UserAssignment]


class SwitcherCompany(ReadModel):
    id: uuid.UUID
    name: str
    parent_id: uuid.UUID | None
    is_active: bool = Field(description="The company named by the request's `X-Company-Id` header.")


class SwitcherRead(ReadModel):
    """The context switcher: the companies the caller reaches, parents first, then children, by name."""

    active_company_id: uuid.UUID | None = Field(
        description="The company named by `X-Company-Id`; null without the header, when lists span every "
                    "company the caller reaches.")
    home_company_id: uuid.UUID
    items: list[SwitcherCompany]
