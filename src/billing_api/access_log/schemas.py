from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from billing_api.schemas import Page, ReadModel


class AccessGrantRead(ReadModel):
    """One reason the reader was allowed: `own_bills`, `delegation_user` (entry_id), `delegation_group`
    (entry_id, group_id), `company_wide` or `company_admin` (rule 6 in company_id), `support` (rule 2), or
    `automation_manager` (the patient's company's automation settings)."""

    rule: str
    provider_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    entry_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None


class AccessLogEntryRead(ReadModel):
    id: uuid.UUID
    created_at: datetime
    actor_id: uuid.UUID = Field(description="Who read.")
    actor_name: str
    route: str = Field(description="The route template read, e.g. `/v1/bills/{bill_id}`.")
    surface: str
    permission: str
    provider_ids: list[uuid.UUID] = Field(description="Providers whose billing data was shown.")
    grants: list[AccessGrantRead] = Field(description="On whose behalf: every rule or list entry that granted it.")
    record_count: int
    client_address: str | None
    user_agent: str | None
    chain_id: int = Field(description="Which of the log's hash chains holds the entry.")
    chain_seq: int = Field(description="The entry's place in its chain.")


class AccessLogPage(Page[AccessLogEntryRead]):
    pass
