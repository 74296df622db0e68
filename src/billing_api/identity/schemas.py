from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictBool, StringConstraints

from billing_api.auth.passwords import MAX_LENGTH, MIN_LENGTH
from billing_api.authz.permissions import Permission
from billing_api.companies.schemas import CompanyRead
from billing_api.models import AccountType, UserKind, UserStatus
from billing_api.schemas import NOT_BLANK, Email, InputModel, Page, ReadModel, example

Username = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK)]
# Passwords are taken exactly as typed: InputModel strips other strings, never these (the login form
# does not strip, so a stripped stored password would never match again).
# Length, commonness and likeness to the login are checked by auth.passwords.check_new_password, which answers
# with codes of its own (`password_too_short`, ...); the schema only documents the minimum.
NewPassword = Annotated[str, StringConstraints(max_length=MAX_LENGTH, strip_whitespace=False),
                        Field(json_schema_extra={"minLength": MIN_LENGTH})]
CurrentPassword = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LENGTH, strip_whitespace=False)]
BillingNumber = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]
GroupName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK)]


class UserCreate(InputModel):
    model_config = example(
        company_id="c0a8f1e2-7b3d-4e5f-8a9b-1c2d3e4f5a60", email="ben.carter@example.com", username="dr.carter",
        display_name="Dr. Ben Carter", password="a-long-initial-password", is_provider=True,
        billing_number="ON-100871",
    )

    company_id: uuid.UUID
    email: Email
    username: Username
    display_name: DisplayName
    password: NewPassword
    account_type: AccountType = AccountType.standard
    is_provider: StrictBool = False
    billing_number: BillingNumber | None = None
    permissions: list[Permission] = Field(default_factory=list, max_length=len(Permission))


class UserUpdate(InputModel):
    model_config = example(display_name="Dr. Benjamin Carter", permissions=["reports:generate"])

    email: Email | None = None
    username: Username | None = None
    display_name: DisplayName | None = None
    account_type: AccountType | None = None
    is_provider: StrictBool | None = None
    billing_number: BillingNumber | None = None
    permissions: list[Permission] | None = Field(default=None, max_length=len(Permission))


class UserRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    email: str
    username: str
    display_name: str
    status: UserStatus
    account_type: AccountType
    kind: UserKind
    is_provider: bool
    billing_number: str | None
    permissions: list[str]
    created_at: datetime
    deactivated_at: datetime | None


class UserPage(Page[UserRead]):
    pass


class GroupCreate(InputModel):
    model_config = example(
        company_id="c0a8f1e2-7b3d-4e5f-8a9b-1c2d3e4f5a60", name="Billing clerks",
        permissions=["bills:view", "bills:save"],
    )

    company_id: uuid.UUID
    name: GroupName
    permissions: list[Permission] = Field(default_factory=list, max_length=len(Permission))


class GroupUpdate(InputModel):
    model_config = example(name="Billing clerks (day shift)")

    name: GroupName | None = None
    permissions: list[Permission] | None = Field(default=None, max_length=len(Permission))


class GroupRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    name: str
    permissions: list[str]
    member_count: int
    active_member_count: int
    created_at: datetime


class GroupPage(Page[GroupRead]):
    pass


class GroupMembersSet(InputModel):
    model_config = example(user_ids=["7d4e2f1a-3b5c-4d6e-8f90-a1b2c3d4e5f6"])

    user_ids: list[uuid.UUID] = Field(max_length=5000)


class GroupMemberRead(ReadModel):
    id: uuid.UUID
    display_name: str
    username: str
    status: UserStatus


class DirectoryEntry(ReadModel):
    """An active user or a group whose name matches the search."""

    type: str = Field(description="`user` or `group`.")
    id: uuid.UUID
    name: str
    username: str | None = None
    is_provider: bool | None = None
    member_count: int | None = Field(default=None, description="Active members, for a group.")


class DirectoryResult(ReadModel):
    items: list[DirectoryEntry]


class ProfileRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    username: str
    display_name: str
    email: str
    is_provider: bool
    billing_number: str | None
    status: UserStatus


class ProfileUpdate(InputModel):
    model_config = example(
        display_name="Dr. Ada Lovelace", new_password="a-long-new-password", current_password="the-current-password",
    )

    display_name: DisplayName | None = None
    email: Email | None = None
    new_password: NewPassword | None = None
    current_password: CurrentPassword | None = Field(
        default=None, description="Required to change the email or the password."
    )


class MeRead(ReadModel):
    user: UserRead
    company: CompanyRead
    permissions: list[str] = Field(description="Held directly or through a group's role.")
    reachable_companies: list[CompanyRead] = Field(description="For the context switcher.")
