"""Role presets, the provider's team, and invitations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from billing_api.authz.permissions import Permission, RolePreset
from billing_api.identity.schemas import DisplayName, NewPassword
from billing_api.models import DeliveryStatus, UserKind
from billing_api.schemas import Email, InputModel, ReadModel, example

Token = Annotated[str, StringConstraints(min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_-]+$",
                                         strip_whitespace=True)]
# The username of an account created by accepting an invitation. No `@`: a username may not equal another
# account's email (both log in), so an `@` would make "is it taken?" a question about other people's emails.
InviteeUsername = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


class RoleRead(ReadModel):
    role: RolePreset
    name: str
    description: str
    permissions: list[Permission] = Field(
        description="What the preset grants. For `custom`: the permissions one may choose from.")
    customizable: bool = Field(description="True for `custom`: the permissions are chosen per person.")


class InvitationCreate(InputModel):
    """Invite someone to work on the provider's billing. The answer is the same whether or not `email` already
    has an account: nothing about other accounts is looked up here. Whoever holds the email decides on
    acceptance: an existing account joins with its own login (signed in), a newcomer creates an account."""

    model_config = example(
        email="clara@example.com", username="clara.clerk", display_name="Clara Clerk", role="data_entry",
    )

    email: Email
    username: InviteeUsername | None = Field(
        default=None, description="A username suggested for a newcomer's account (letters, digits, `.`, `_`, "
        "`-`). Not checked or reserved here: the newcomer may choose another on acceptance, and a taken one is "
        "refused then (409 `username_taken`). Ignored when the email already has an account, which keeps its "
        "own username.")
    display_name: DisplayName | None = Field(default=None, description="Suggested for a newcomer's account; "
                                             "defaults to the username. Ignored for an existing account.")
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
    """An invitation as the inviter sent it. It never says whether the email has an account, nor that
    account's username: the team shows who joined, with their username, once the invitation is accepted."""

    id: uuid.UUID
    provider_id: uuid.UUID
    email: str
    username: str | None = Field(description="The username the inviter suggested for a newcomer, as sent (null "
                                 "if none); never the username of an existing account.")
    display_name: str | None = Field(description="The display name the inviter suggested, as sent.")
    role: RolePreset
    permissions: list[str]
    state: Literal["pending", "expired", "accepted", "cancelled"] = Field(
        description="`expired`: pending past `expires_at` (a resend revives it).")
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
    """The token proves control of the invited email; whether that email has an account is answered here, to
    its holder. An email that already has an account: `token` alone, sent with that account's bearer token
    (sign in first; 401 `invitation_login_required` without it). A newcomer: `token` and `password`, signed
    out, and `username` unless the inviter suggested one (422 `username_required`)."""

    model_config = example(
        token="k3J9x_2mQpL8vN4rT6wY1zB5", username="clara.clerk", password="a-long-new-password",
        display_name="Clara Clerk",
    )

    token: Token = Field(description="The `token` of the link in the email.")
    username: InviteeUsername | None = Field(
        default=None, description="A newcomer's username (letters, digits, `.`, `_`, `-`); defaults to the one "
        "the inviter suggested. 409 `username_taken` if someone has it.")
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
