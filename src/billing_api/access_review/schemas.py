from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from billing_api.schemas import INT32_MAX, InputModel, ReadModel, example, json_int

GrantRule = Literal["own_bills", "delegation_user", "delegation_group", "company_wide", "company_admin", "support"]


class ReviewedGrant(ReadModel):
    rule: GrantRule = Field(description="`own_bills` (the provider), `delegation_user` / `delegation_group` (a list "
                            "entry naming the person, or a group they are in), `company_wide` (segregation is off "
                            "and the person reaches `company_id`), `company_admin` (the same, for a company "
                            "administrator, of the company or of its parent), `support` (vendor support, read-only).")
    entry_id: uuid.UUID | None = Field(description="The list entry, for `delegation_*`.")
    group_id: uuid.UUID | None
    group_name: str | None
    company_id: uuid.UUID | None = Field(description="For `company_wide`: the company whose bills it opens.")
    role: str | None
    permissions: list[str] | None = Field(description="What the list entry grants; null for other rules.")
    expires_at: datetime | None
    granted_at: datetime | None = Field(description="When the person got this grant: the list save or accepted "
                                        "invitation that named them, or the group change that added them, whichever "
                                        "came last (from the audit events); the account's creation for other rules.")
    granted_by: uuid.UUID | None = Field(description="Who made that change (the inviter, for an invitation).")
    granted_by_name: str | None
    last_used_at: datetime | None = Field(description="The last read of the provider's billing data through this "
                                          "grant, from the access log.")
    reads_30_days: int = Field(description="Reads through this grant in the last 30 UTC days, today included.")
    reads_90_days: int
    dormant: bool = Field(description="Unused (or, never used, held) for longer than the company's "
                          "`access_review_dormant_days`. Never for `own_bills` and `support`.")
    removable: bool = Field(description="A list save can remove it (`delegation_*`).")


class ReviewedPerson(ReadModel):
    user_id: uuid.UUID
    display_name: str
    username: str
    active: bool = Field(description="False: deactivated; their list entries grant nothing until reactivated.")
    account_type: str
    dormant: bool = Field(description="Every grant this person holds is dormant.")
    last_used_at: datetime | None
    reads_30_days: int
    reads_90_days: int
    grants: list[ReviewedGrant]


class RemovableEntry(ReadModel):
    entry_id: uuid.UUID
    type: Literal["user", "group"]
    user_id: uuid.UUID | None
    group_id: uuid.UUID | None
    name: str
    reason: Literal["dormant", "expired"] = Field(description="`dormant`: no one used it within the threshold; "
                                                  "`expired`: it grants nothing any more.")
    last_used_at: datetime | None


class AttestationRead(ReadModel):
    id: uuid.UUID
    provider_id: uuid.UUID
    attested_at: datetime
    attested_by: uuid.UUID
    attested_by_name: str | None
    list_version: int = Field(description="The delegation list version that was reviewed.")
    people: int
    dormant_grants: int


class AccessReviewPage(ReadModel):
    provider_id: uuid.UUID
    company_id: uuid.UUID
    generated_at: datetime
    dormant_after_days: int
    review_interval_days: int
    list_version: int
    people: int = Field(description="Everyone holding a grant (the whole review, not this page).")
    grants: int
    dormant_grants: int
    last_attestation: AttestationRead | None
    due_at: datetime = Field(description="When the next attestation is due: the interval after the last one, or "
                             "after the provider's account was created.")
    overdue: bool
    removable_entries: list[RemovableEntry] = Field(description="The list entries to consider removing: dormant "
                                                    "ones, and expired ones. Remove them by saving the list (`PUT "
                                                    "/v1/providers/{id}/delegation`) without them, over "
                                                    "`list_version`.")
    items: list[ReviewedPerson]
    next_cursor: str | None = None


class AttestationCreate(InputModel):
    model_config = example(list_version=4, password="your-own-password")

    list_version: json_int(ge=0, le=INT32_MAX, description="The `list_version` of the review you read: if the list "
                           "changed since, 409 and nothing is recorded.")
    password: str = Field(min_length=1, max_length=256, description="Your password, to confirm.")


class ProviderReviewSummary(ReadModel):
    provider_id: uuid.UUID
    display_name: str
    company_id: uuid.UUID
    people: int
    grants: int
    dormant_grants: int
    last_attested_at: datetime | None
    due_at: datetime
    overdue: bool


class CompanyReviewPage(ReadModel):
    company_id: uuid.UUID
    items: list[ProviderReviewSummary]
    next_cursor: str | None = None
