"""Every event type and its payload. Payloads carry ids, states and amounts: no names, no clinical data."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from billing_api.models import BillSource, BillStatus, Coverage, PaymentMethod
from billing_api.schemas import ReadModel

_BILL = "3f2a9a52-1d1c-4a55-9d43-0c6d1b7e8a01"
_PROVIDER = "9b0e6a1c-52f4-4c7e-8e0a-6f1d2c3b4a55"
_PATIENT = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
_USER = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
_GROUP = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
_COMPANY = "0d1e2f3a-4b5c-4d6e-9f7a-8b9c0d1e2f3a"
_PAYER = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"


class EventData(BaseModel):
    """A payload. `TYPE` names the event; a subclass of BillEventData is about one provider's bills."""

    TYPE: ClassVar[str]
    DESCRIPTION: ClassVar[str]


class BillEventData(EventData):
    """Seen by whoever may view the provider's bills in the event's company (the bill scope)."""

    bill_id: uuid.UUID
    provider_id: uuid.UUID
    patient_id: uuid.UUID


class CompanyEventData(EventData):
    """A change of who may see what in a company: seen by that company's administrators."""


def _examples(*examples: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


_BILL_IDS = {"bill_id": _BILL, "provider_id": _PROVIDER, "patient_id": _PATIENT}


class BillCreated(BillEventData):
    TYPE = "bill.created"
    DESCRIPTION = "A bill was created, by a user (`source: manual`, a draft) or by the nightly automation " \
                  "(`source: automation`, issued as `submitted`)."
    model_config = _examples({**_BILL_IDS, "status": "draft", "source": "manual", "coverage": "insured",
                              "payer_id": _PAYER, "total_cents": 12000})

    status: BillStatus
    source: BillSource
    coverage: Coverage
    payer_id: uuid.UUID | None = Field(description="The payer an insured bill is sent to; null for a private bill.")
    total_cents: int


class BillSubmitted(BillEventData):
    TYPE = "bill.submitted"
    DESCRIPTION = "A draft bill was submitted."
    model_config = _examples({**_BILL_IDS, "total_cents": 12000, "balance_cents": 12000})

    total_cents: int
    balance_cents: int


class PaymentRecorded(BillEventData):
    TYPE = "payment.recorded"
    DESCRIPTION = "A payment was taken off a bill's balance (recorded by a user, or an AutoPay charge)."
    model_config = _examples({**_BILL_IDS, "payment_id": _USER, "amount_cents": 2000, "method": "insurer",
                              "balance_cents": 10000, "bill_status": "submitted"})

    payment_id: uuid.UUID
    amount_cents: int
    method: PaymentMethod
    balance_cents: int
    bill_status: BillStatus


class BillPaid(BillEventData):
    TYPE = "bill.paid"
    DESCRIPTION = "A bill's balance reached zero (after the `payment.recorded` of the same payment)."
    model_config = _examples({**_BILL_IDS, "payment_id": _USER, "total_cents": 12000})

    payment_id: uuid.UUID
    total_cents: int


class AutopaySucceeded(BillEventData):
    TYPE = "autopay.succeeded"
    DESCRIPTION = "The nightly AutoPay charged the card on file for a bill's balance."
    model_config = _examples({**_BILL_IDS, "charge_id": _GROUP, "payment_id": _USER, "amount_cents": 12000,
                              "local_date": "2026-11-24"})

    charge_id: uuid.UUID
    payment_id: uuid.UUID
    amount_cents: int
    local_date: date


class AutopayDeclined(BillEventData):
    TYPE = "autopay.declined"
    DESCRIPTION = "The nightly AutoPay charge was declined, with the gateway's reason; an expired card is " \
                  "deactivated (`card_deactivated`)."
    model_config = _examples({**_BILL_IDS, "charge_id": _GROUP, "amount_cents": 12000, "local_date": "2026-11-24",
                              "decline_reason": "insufficient_funds", "card_deactivated": False})

    charge_id: uuid.UUID
    amount_cents: int
    local_date: date
    decline_reason: str | None
    card_deactivated: bool


class InvitationAcceptedEvent(CompanyEventData):
    TYPE = "invitation.accepted"
    DESCRIPTION = "Someone accepted an invitation to a provider's team: they are on the provider's list now."
    model_config = _examples({"invitation_id": _GROUP, "provider_id": _PROVIDER, "user_id": _USER,
                              "account_created": True, "role": "data_entry"})

    invitation_id: uuid.UUID
    provider_id: uuid.UUID
    user_id: uuid.UUID
    account_created: bool
    role: str


class TeamMemberUpdated(CompanyEventData):
    TYPE = "team.member_updated"
    DESCRIPTION = "A provider's team member got another role or permission set (their list entry changed)."
    model_config = _examples({"provider_id": _PROVIDER, "user_id": _USER, "role": "financial_viewer"})

    provider_id: uuid.UUID
    user_id: uuid.UUID
    role: str


class TeamMemberRevoked(CompanyEventData):
    TYPE = "team.member_revoked"
    DESCRIPTION = "A member was taken off a provider's team (their list entry is gone; the account stays)."
    model_config = _examples({"provider_id": _PROVIDER, "user_id": _USER})

    provider_id: uuid.UUID
    user_id: uuid.UUID


class DelegationListSaved(CompanyEventData):
    TYPE = "delegation.list_saved"
    DESCRIPTION = "A provider's delegation list was replaced (read it for the entries)."
    model_config = _examples({"provider_id": _PROVIDER, "version": 3, "entries": 2})

    provider_id: uuid.UUID
    version: int
    entries: int


class AccessReviewAttested(CompanyEventData):
    TYPE = "access_review.attested"
    DESCRIPTION = "Someone confirmed a review of who can see a provider's bills (over one list version)."
    model_config = _examples({"provider_id": _PROVIDER, "attestation_id": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9",
                              "list_version": 3, "dormant_grants": 0})

    provider_id: uuid.UUID
    attestation_id: uuid.UUID
    list_version: int
    dormant_grants: int


class SegregationEnabled(CompanyEventData):
    TYPE = "segregation.enabled"
    DESCRIPTION = "Billing segregation was turned on (permanently) in the event's company."
    model_config = _examples({"enabled_by": _USER})

    enabled_by: uuid.UUID


class GroupMembersChanged(CompanyEventData):
    TYPE = "group.members_changed"
    DESCRIPTION = "Users joined or left a group (its role and its list entries apply to its members)."
    model_config = _examples({"group_id": _GROUP, "added": [_USER], "removed": []})

    group_id: uuid.UUID
    added: list[uuid.UUID]
    removed: list[uuid.UUID]


class UserDeactivated(CompanyEventData):
    TYPE = "user.deactivated"
    DESCRIPTION = "A user was deactivated: no access from the next request."
    model_config = _examples({"user_id": _USER})

    user_id: uuid.UUID


class UserReactivated(CompanyEventData):
    TYPE = "user.reactivated"
    DESCRIPTION = "A deactivated user was reactivated."
    model_config = _examples({"user_id": _USER})

    user_id: uuid.UUID


class GroupAssignmentsChanged(CompanyEventData):
    TYPE = "assignments.group_changed"
    DESCRIPTION = "A group's billing customer assignments (child companies) changed."
    model_config = _examples({"group_id": _GROUP, "added": [_COMPANY], "removed": []})

    group_id: uuid.UUID
    added: list[uuid.UUID]
    removed: list[uuid.UUID]


class UserAssignmentsChanged(CompanyEventData):
    TYPE = "assignments.user_changed"
    DESCRIPTION = "A user's direct billing customer assignments (child companies) changed."
    model_config = _examples({"user_id": _USER, "added": [], "removed": [_COMPANY]})

    user_id: uuid.UUID
    added: list[uuid.UUID]
    removed: list[uuid.UUID]


PAYLOADS: tuple[type[EventData], ...] = (
    BillCreated, BillSubmitted, PaymentRecorded, BillPaid, AutopaySucceeded, AutopayDeclined, InvitationAcceptedEvent,
    TeamMemberUpdated, TeamMemberRevoked, DelegationListSaved, AccessReviewAttested, SegregationEnabled,
    GroupMembersChanged, UserDeactivated, UserReactivated, GroupAssignmentsChanged, UserAssignmentsChanged,
)
EVENT_TYPES = tuple(payload.TYPE for payload in PAYLOADS)
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class EventEnvelope(ReadModel):
    id: uuid.UUID
    occurred_at: datetime
    company_id: uuid.UUID


def _event_model(payload: type[EventData]) -> type[EventEnvelope]:
    """`{id, type, occurred_at, company_id, data}` with this type's payload: one schema per event type."""
    name = payload.__name__ + "Event"
    return create_model(
        name, __base__=EventEnvelope, __doc__=f"`{payload.TYPE}`: {payload.DESCRIPTION}",
        type=(Literal[payload.TYPE], ...), data=(payload, ...),  # type: ignore[valid-type]
    )


EVENT_MODELS = {payload.TYPE: _event_model(payload) for payload in PAYLOADS}
Event = Annotated[Union[tuple(EVENT_MODELS.values())], Field(discriminator="type")]  # type: ignore[valid-type]


class EventPage(BaseModel):
    """Events oldest first. Pass `next_cursor` back as `after` to read on, now or at the next poll: it is
    null only when there are no events for you yet."""

    items: list[Event]
    next_cursor: str | None = None
    has_more: bool = Field(description="More events are ready now: read on without waiting.")
