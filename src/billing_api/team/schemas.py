"""Role presets, the provider's team, and invitations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import EmailStr, Field, StringConstraints

from billing_api.authz.permissions import Permission, RolePreset
from billing_api.identity.schemas import DisplayName, NewPassword, Username
from billing_api.models import DeliveryStatus, UserKind
from billing_api.schemas import InputModel, ReadModel, example

Token = Annotated[str, StringConstraints(min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_-]+$",
                                         strip_whitespace=True)]


class RoleRead(ReadModel):
    role: RolePreset
    name: str
    description: str
    permissions: list[Permission] = Field(
        description="What the preset grants. For `custom`: the permissions one may choose from.")
    customizable: bool = Field(description="True for `custom`: the permissions are chosen per person.")


class InvitationCreate(InputModel):
    """Invite someone to work on the provider's billing. If `email` already belongs to an account (another
    provider invited them, say), the invitation reuses that account: leave `username` out (or give theirs)."""

    model_config = example(
        email="clara@example.com", username="clara.clerk", display_name="Clara Clerk", role="data_entry",
    )

    email: EmailStr = Field(max_length=320)
    username: Username | None = Field(
        default=None, description="The username of the account to create; required unless the email already "
        "has an account.")
    display_name: DisplayName | None = Field(default=None, description="Defaults to the username.")
    role: RolePreset
    permissions: list[Permission] | None = Field(
        default=None, max_length=len(Permission), description="Only with role `custom`: at least one, and never "
        "`team:invite` (inviting is not delegated).")


class DeliveryRead(ReadModel):
    status: DeliveryStatus = Field(description="`queued` (waiting or retrying), `sent`, or `failed`.")
    attempts: int
    last_attempt_at: datetime | None
    error: str | None = Field(description="Why the last attempt failed (the mail server's answer).")
    sent_at: datetime | None


class InvitationRead(ReadModel):
    id: uuid.UUID
    provider_id: uuid.UUID
    email: str
    username: str | None
    display_name: str | None
    role: RolePreset
    permissions: list[str]
    state: Literal["pending", "expired", "accepted", "cancelled"] = Field(
        description="`expired`: pending past `expires_at` (a resend revives it).")
    reuses_existing_account: bool = Field(
        description="The email already has an account: the invitee accepts signed in with it.")
    expires_at: datetime
    created_at: datetime
    invited_by: uuid.UUID | None
    delivery: DeliveryRead


class TeamMemberRead(ReadModel):
    user_id: uuid.UUID
    username: str
    display_name: str
    email: str
    kind: UserKind = Field(description="`invited`: the account was created by accepting an invitation.")
    active: bool = Field(description="False when deactivated: they stay listed and gain nothing.")
    role: str
    permissions: list[str]
    source: Literal["list", "invitation"] = Field(
        description="Added on the delegation list, or by accepting an invitation.")
    invitation_id: uuid.UUID | None
    expires_at: datetime | None
    expired: bool
    added_at: datetime


class TeamRead(ReadModel):
    """The people named on the provider's delegation list (groups are managed on the list itself), and the
    invitations still open."""

    provider_id: uuid.UUID
    list_version: int = Field(description="The delegation list's version; every team change moves it on.")
    members: list[TeamMemberRead]
    invitations: list[InvitationRead]


class TeamMemberUpdate(InputModel):
    model_config = example(role="custom", permissions=["bills:view", "invoices:view"])

    role: RolePreset
    permissions: list[Permission] | None = Field(default=None, max_length=len(Permission),
                                                 description="Only with role `custom`.")


class InvitationAccept(InputModel):
    """A new account: `token` and `password`. An email that already has an account: `token` alone, sent with
    that account's bearer token (sign in first)."""

    model_config = example(
        token="k3J9x_2mQpL8vN4rT6wY1zB5", password="a-long-new-password", display_name="Clara Clerk",
    )

    token: Token = Field(description="The `token` of the link in the email.")
    password: NewPassword | None = Field(default=None, description="The new account's password.")
    display_name: DisplayName | None = Field(default=None, description="For a new account.")


class InvitationAccepted(ReadModel):
    invitation_id: uuid.UUID
    provider_id: uuid.UUID
    user_id: uuid.UUID
    username: str
    account_created: bool = Field(description="False when an existing account accepted.")
    role: RolePreset
    permissions: list[str]
