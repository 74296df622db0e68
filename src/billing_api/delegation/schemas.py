from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field, StrictBool

from billing_api.authz.permissions import Permission, RolePreset
from billing_api.schemas import INT32_MAX, AwareMoment, InputModel, ReadModel, example, json_int


class DelegationEntryInput(InputModel):
    """A user or a group (exactly one), with a role preset or, for `custom`, a permission set."""

    user_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None
    role: RolePreset | None = Field(default=None, description="Omitted: `administrator`.")
    permissions: list[Permission] | None = Field(default=None, max_length=len(Permission),
                                                 description="Only with role `custom`.")
    expires_at: AwareMoment | None = Field(default=None, description="The entry stops granting at this instant.")


class DelegationListSave(InputModel):
    model_config = example(
        entries=[
            {"group_id": "2b3c4d5e-6f7a-4b8c-9d0e-f1a2b3c4d5e6", "role": "data_entry"},
            {"user_id": "7d4e2f1a-3b5c-4d6e-8f90-a1b2c3d4e5f6", "role": "custom",
             "permissions": ["bills:view", "reports:generate"], "expires_at": "2027-01-31T23:59:00Z"},
        ],
        version=3, password="your-own-password",
    )

    entries: list[DelegationEntryInput] = Field(max_length=500)
    version: json_int(ge=0, le=INT32_MAX, description="The `version` you read; a stale one gets 409 and saves nothing.")
    password: str = Field(min_length=1, max_length=256, description="Your password, to confirm the save.")


class DelegationEntryRead(ReadModel):
    id: uuid.UUID
    type: str = Field(description="`user` or `group`.")
    user_id: uuid.UUID | None
    group_id: uuid.UUID | None
    name: str
    active: bool | None = Field(description="For a user: false when deactivated (they stay listed, granting nothing).")
    member_count: int | None = Field(description="For a group: its active members.")
    role: str
    permissions: list[str]
    expires_at: datetime | None
    expired: bool
    source: str = Field(default="list", description="`list` (saved on the list) or `invitation` (an accepted "
                        "invitation; such a user may be from outside the provider's company).")
    invitation_id: uuid.UUID | None = None


class DelegationListRead(ReadModel):
    provider_id: uuid.UUID
    version: int
    updated_at: datetime | None
    updated_by: uuid.UUID | None
    entries: list[DelegationEntryRead]


class AccessReason(ReadModel):
    rule: str
    grants: bool
    detail: str
    entry_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None
    group_name: str | None = None
    company_id: uuid.UUID | None = None
    expires_at: datetime | None = None


class AccessExplanation(ReadModel):
    allowed: bool
    user_id: uuid.UUID
    provider_id: uuid.UUID
    company_id: uuid.UUID
    permission: Permission
    reasons: list[AccessReason]


class ProviderAccessEntry(ReadModel):
    user_id: uuid.UUID
    display_name: str
    username: str
    reasons: list[AccessReason]


class ProviderAccessPage(ReadModel):
    items: list[ProviderAccessEntry]
    next_cursor: str | None = None


class EmptyListProvider(ReadModel):
    provider_id: uuid.UUID
    display_name: str
    bill_count: int


class AccessLoss(ReadModel):
    user_id: uuid.UUID
    display_name: str
    provider_ids: list[uuid.UUID] = Field(description="Providers whose bills this user will no longer see.")


class SegregationRead(ReadModel):
    company_id: uuid.UUID
    enabled: bool
    enabled_at: datetime | None
    enabled_by: uuid.UUID | None
    ready: bool = Field(description="No provider with bills has an empty delegation list.")
    providers_with_empty_list: list[EmptyListProvider]
    preview: list[AccessLoss] = Field(description="Before enabling: who will lose access to whose bills.")


class SegregationEnable(InputModel):
    model_config = example(password="your-own-password", acknowledge_empty_lists=False)

    password: str = Field(min_length=1, max_length=256)
    acknowledge_empty_lists: StrictBool = Field(
        default=False, description="Enable even though some providers with bills have an empty list."
    )
