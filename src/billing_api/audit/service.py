"""Recording audit events. Events commit with the request's work, and are inserted last, at commit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from billing_api.models import AuditEvent
from billing_api.models.audit import build_event

if TYPE_CHECKING:
    from billing_api.auth.principal import Principal


PENDING = "pending_audit_events"


def record(session: AsyncSession, principal: Principal | None, action: str, **fields: Any) -> AuditEvent:
    audit_event = build_event(principal, action, **fields)
    session.sync_session.info.setdefault(PENDING, []).append(audit_event)
    return audit_event


# Inserting an audit event takes the hash chain's lock until commit (migration 0010). Taken in the middle of a
# transaction, before row locks that another transaction holds while it waits for the chain, it deadlocked
# (bench/load.py found it). So the events wait for the commit and go in after everything else: the chain's lock
# is the last lock any transaction takes, and a holder never waits on another.
@event.listens_for(Session, "before_commit")
def _insert_pending_events(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if pending:
        session.flush()
        session.add_all(pending)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending_events(session: Session, previous_transaction: Any) -> None:
    if not session.in_transaction():
        session.info.pop(PENDING, None)
