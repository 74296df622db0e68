"""All SQL of access reviews: who holds which grant to a provider's bills, how each grant was used (rolled up from
the access log, plus the rows not rolled up yet), attestations and reminders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import (
    Select, Text, and_, bindparam, cast, func, literal, null, or_, select, text, tuple_, union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz.repository import users_reaching
from billing_api.authz.rules import entry_is_live
from billing_api.db import fetch
from billing_api.models import (
    NO_VIA,
    AccessGrantUse,
    AccessReviewAttestation,
    AccessReviewReminder,
    AccountType,
    AuditEvent,
    Company,
    DelegationEntry,
    DelegationList,
    Group,
    GroupMember,
    Invitation,
    User,
    UserKind,
    UserStatus,
)

# The access log's chains (migration 0010 made 16): the roll-up keeps a mark per chain.
ACCESS_LOG_CHAINS = 16
ROLLUP_LOCK = 80_020
# Day counts older than this are never asked for (the review counts 30 and 90 days back).
DAYS_KEPT = 90

# One key per grant and access-log row: the provider, the rule, and what it went through (the group, the company
# of a company-wide grant). A company administrator's company-wide reads count for the company-wide grant the
# review shows, whatever the account type was at the time.
_KEYED = f"""
    SELECT DISTINCT a.chain_id, a.chain_seq, a.actor_id AS user_id, a.created_at,
           (g->>'provider_id')::uuid AS provider_id,
           CASE WHEN g->>'rule' = 'company_admin' THEN 'company_wide' ELSE g->>'rule' END AS rule,
           CASE WHEN g->>'rule' = 'delegation_group' THEN (g->>'group_id')::uuid
                WHEN g->>'rule' IN ('company_wide', 'company_admin') THEN (g->>'company_id')::uuid
                ELSE '{NO_VIA}'::uuid END AS via_id
      FROM {{rows}} a CROSS JOIN LATERAL jsonb_array_elements(a.grants) g
     WHERE g ? 'provider_id'
"""

# Rows of each chain above its mark, oldest first, at most :chunk per chain.
_UNROLLED = f"""
    SELECT a.* FROM generate_series(0, {ACCESS_LOG_CHAINS - 1}) AS c(chain_id)
      LEFT JOIN access_usage_rollup m ON m.chain_id = c.chain_id
     CROSS JOIN LATERAL (SELECT l.chain_id, l.chain_seq, l.actor_id, l.created_at, l.grants, l.provider_ids
                           FROM access_log l
                          WHERE l.chain_id = c.chain_id AND l.chain_seq > coalesce(m.last_seq, 0)
                          ORDER BY l.chain_seq LIMIT {{limit}}) a
"""

_ROLL_UP = text(f"""
WITH picked AS MATERIALIZED ({_UNROLLED.format(limit=':chunk')}),
keyed AS MATERIALIZED ({_KEYED.format(rows='picked')}),
uses AS (
    INSERT INTO access_grant_use AS u (provider_id, user_id, rule, via_id, first_read_at, last_read_at)
    SELECT provider_id, user_id, rule, via_id, min(created_at), max(created_at) FROM keyed GROUP BY 1, 2, 3, 4
    ON CONFLICT (provider_id, user_id, rule, via_id) DO UPDATE
       SET first_read_at = least(u.first_read_at, excluded.first_read_at),
           last_read_at = greatest(u.last_read_at, excluded.last_read_at)
),
days AS (
    INSERT INTO access_grant_use_day AS d (provider_id, user_id, rule, via_id, day, reads)
    SELECT provider_id, user_id, rule, via_id, (created_at AT TIME ZONE 'UTC')::date, count(*)
      FROM keyed WHERE created_at >= (now() AT TIME ZONE 'UTC')::date - {DAYS_KEPT} GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (provider_id, user_id, rule, via_id, day) DO UPDATE SET reads = d.reads + excluded.reads
),
marks AS (
    INSERT INTO access_usage_rollup AS m (chain_id, last_seq)
    SELECT chain_id, max(chain_seq) FROM picked GROUP BY chain_id
    ON CONFLICT (chain_id) DO UPDATE SET last_seq = excluded.last_seq
)
SELECT count(*) FROM picked
""")


async def roll_up(session: AsyncSession, chunk: int) -> int:
    """Fold up to `chunk` access-log rows of each chain, past its mark, into the usage tables, and move the marks:
    one statement, so the counts and the marks move together. Workers take turns (a transaction lock)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROLLUP_LOCK})
    return int((await session.execute(_ROLL_UP, {"chunk": chunk})).scalar_one())


async def forget_old_days(session: AsyncSession) -> int:
    result = await session.execute(text(
        f"DELETE FROM access_grant_use_day WHERE day < (now() AT TIME ZONE 'UTC')::date - {DAYS_KEPT}"))
    return result.rowcount


# Who holds which grant


def _no_id():
    return cast(null(), UUID(as_uuid=True))


_PROVIDER = bindparam("provider_id", type_=UUID(as_uuid=True))
_COMPANY = bindparam("company_id", type_=UUID(as_uuid=True))


def _holders(segregated: bool) -> list[Select]:
    """Every grant to the bills of provider `:provider_id` (of company `:company_id`): (user_id, rule, via_id,
    entry_id, group_id, and the list entry's creation). Unlike the transparency listing, people a list names stay
    here when deactivated (their entries would grant again on reactivation); rule 6 and support grant only while
    active, so only active people hold those."""
    not_support = User.account_type != AccountType.support
    no_id, no_time = _no_id(), cast(null(), DelegationEntry.created_at.type)
    own = select(
        User.id.label("user_id"), literal("own_bills").label("rule"), literal(NO_VIA).label("via_id"),
        no_id.label("entry_id"), no_id.label("group_id"), no_time.label("created_at"),
    ).where(User.id == _PROVIDER, User.is_provider)
    rows = [
        own,
        select(DelegationEntry.user_id, literal("delegation_user"), literal(NO_VIA), DelegationEntry.id, no_id,
               DelegationEntry.created_at)
        .join(User, User.id == DelegationEntry.user_id)
        .where(DelegationEntry.provider_id == _PROVIDER, entry_is_live(), not_support),
        select(GroupMember.user_id, literal("delegation_group"), DelegationEntry.group_id, DelegationEntry.id,
               DelegationEntry.group_id, DelegationEntry.created_at)
        .join(GroupMember, GroupMember.group_id == DelegationEntry.group_id)
        .join(User, User.id == GroupMember.user_id)
        .where(DelegationEntry.provider_id == _PROVIDER, entry_is_live(), not_support),
        select(User.id, literal("support"), literal(NO_VIA), no_id, no_id, no_time)
        .where(User.account_type == AccountType.support, User.status == UserStatus.active),
    ]
    if not segregated:
        reaching = users_reaching(_COMPANY, members_only=True).subquery()
        rows.append(
            select(User.id, literal("company_wide"), _COMPANY, no_id, no_id, no_time)
            .where(User.id.in_(select(reaching.c.user_id)), User.status == UserStatus.active, not_support)
        )
    return rows


@lru_cache
def _grants(segregated: bool) -> Select:
    """Built once per segregation state and run straight on asyncpg (`db.fetch`): a review reads a row per grant,
    a thousand for a large practice, and SQLAlchemy's result layer cost more than the statement."""
    h = union_all(*_holders(segregated)).subquery("holders").c
    rolled = select(AccessGrantUse).where(AccessGrantUse.provider_id == _PROVIDER).subquery("rolled")
    return (
        select(h.user_id, h.rule, h.via_id, h.entry_id, h.group_id, h.created_at.label("entry_created_at"),
               User.display_name, User.created_at.label("user_created_at"), rolled.c.last_read_at)
        .join(User, User.id == h.user_id)
        .outerjoin(rolled, and_(rolled.c.user_id == h.user_id, rolled.c.rule == h.rule,
                                rolled.c.via_id == h.via_id))
        .order_by(User.display_name, User.id, h.rule, h.via_id)
    )


class Grant(NamedTuple):
    """A row of `_grants`: what the whole review needs of each grant (a tuple: a review reads each field of a
    thousand of them several times). What only a page shows is read for the page (`people`, the list entries)."""

    user_id: uuid.UUID
    rule: str
    via_id: uuid.UUID
    entry_id: uuid.UUID | None
    group_id: uuid.UUID | None
    entry_created_at: datetime | None
    display_name: str
    user_created_at: datetime
    last_read_at: datetime | None


async def grants_of(session: AsyncSession, provider: User, segregated: bool) -> list[Grant]:
    """Every grant to the provider's bills with its holder and its last use as rolled up (`unrolled_use` has the
    rest), by holder name."""
    rows = await fetch(session, _grants(segregated), {"provider_id": provider.id, "company_id": provider.company_id})
    return [Grant._make(row) for row in rows]


GrantKey = tuple[uuid.UUID, str, uuid.UUID]  # (user, rule, via)

# Reads of one provider's data not rolled up yet, by grant: the last, and how many in the last 30 and 90 UTC days.
_PROVIDER_UNROLLED = _UNROLLED.format(limit="ALL").replace(
    "AND l.chain_seq >", "AND l.provider_ids @> ARRAY[CAST(:provider_id AS uuid)] AND l.chain_seq >")
_UNROLLED_USE = text(f"""
    WITH today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS day)
    SELECT user_id, rule, via_id, max(created_at),
           count(*) FILTER (WHERE (created_at AT TIME ZONE 'UTC')::date > (SELECT day FROM today) - 30),
           count(*) FILTER (WHERE (created_at AT TIME ZONE 'UTC')::date > (SELECT day FROM today) - 90)
      FROM ({_KEYED.format(rows=f"({_PROVIDER_UNROLLED})")}) k
     WHERE provider_id = :provider_id GROUP BY 1, 2, 3
""").bindparams(bindparam("provider_id", type_=UUID(as_uuid=True)))


async def unrolled_use(session: AsyncSession, provider_id: uuid.UUID
                       ) -> dict[GrantKey, tuple[datetime, int, int]]:
    """The reads of the provider's data logged since the roll-up's marks (all of them: the worker keeps them few),
    by grant: (last read, reads in 30 days, reads in 90 days)."""
    rows = await fetch(session, _UNROLLED_USE, {"provider_id": provider_id})
    return {(user, rule, via): (last, int(d30), int(d90)) for user, rule, via, last, d30, d90 in rows}


_ROLLED_COUNTS = text("""
    WITH today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS day)
    SELECT user_id, rule, via_id,
           coalesce(sum(reads) FILTER (WHERE day > (SELECT day FROM today) - 30), 0),
           coalesce(sum(reads), 0)
      FROM access_grant_use_day
     WHERE provider_id = :provider_id AND user_id = ANY(:user_ids) AND day > (SELECT day FROM today) - 90
     GROUP BY 1, 2, 3
""").bindparams(bindparam("provider_id", type_=UUID(as_uuid=True)),
                bindparam("user_ids", type_=ARRAY(UUID(as_uuid=True))))


async def count_reads(session: AsyncSession, provider_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
                      ) -> dict[GrantKey, tuple[int, int]]:
    """(user, rule, via) -> rolled-up reads in the last 30 and 90 days (UTC days, today included)."""
    if not user_ids:
        return {}
    rows = await fetch(session, _ROLLED_COUNTS, {"provider_id": provider_id, "user_ids": list(user_ids)})
    return {(user, rule, via): (int(d30), int(d90)) for user, rule, via, d30, d90 in rows}


_LIST_ENTRIES = (
    select(DelegationEntry.id, DelegationEntry.user_id, DelegationEntry.group_id, DelegationEntry.role,
           DelegationEntry.permissions, DelegationEntry.expires_at,
           func.coalesce(User.display_name, Group.name).label("name"), entry_is_live().label("live"))
    .outerjoin(User, User.id == DelegationEntry.user_id)
    .outerjoin(Group, Group.id == DelegationEntry.group_id)
    .where(DelegationEntry.provider_id == _PROVIDER)
    .order_by(DelegationEntry.group_id.is_(None), func.coalesce(Group.name, User.display_name), DelegationEntry.id)
)


class ListEntry(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID | None
    group_id: uuid.UUID | None
    role: str
    permissions: list[str]
    expires_at: datetime | None
    name: str
    live: bool


async def list_entries(session: AsyncSession, provider_id: uuid.UUID) -> list[ListEntry]:
    """The provider's list entries with the name of the user or group each names and whether it is `live` (by the
    database's clock, as the rules read it)."""
    return [ListEntry._make(row) for row in await fetch(session, _LIST_ENTRIES, {"provider_id": provider_id})]


# Where grants came from: the audit events that made them


GRANTING_ACTIONS = ("delegation.list_saved", "invitation.accepted", "team.member_revoked")


async def granting_events(session: AsyncSession, provider_id: uuid.UUID, group_ids: Sequence[uuid.UUID]
                          ) -> list[AuditEvent]:
    """The events that added or removed people from the provider's list, and members of its groups, in the order
    they were written (the audit chain is one chain)."""
    statement = select(AuditEvent).where(or_(
        and_(AuditEvent.target_id == provider_id, AuditEvent.action.in_(GRANTING_ACTIONS)),
        and_(AuditEvent.target_id.in_(list(group_ids)), AuditEvent.action == "group.members_set"),
    )).order_by(AuditEvent.created_at, AuditEvent.chain_seq)
    return list((await session.execute(statement)).scalars())


async def inviters(session: AsyncSession, invitation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    if not invitation_ids:
        return {}
    statement = select(Invitation.id, Invitation.invited_by).where(Invitation.id.in_(list(invitation_ids)))
    return {row[0]: row[1] for row in (await session.execute(statement)).all() if row[1] is not None}


class Person(NamedTuple):
    id: uuid.UUID
    display_name: str
    username: str
    active: bool
    account_type: str


_PEOPLE = select(User.id, User.display_name, User.username, (User.status == UserStatus.active).label("active"),
                 cast(User.account_type, Text).label("account_type")).where(
    User.id == func.any(bindparam("user_ids", type_=ARRAY(UUID(as_uuid=True)))))


async def people(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Person]:
    if not user_ids:
        return {}
    return {row[0]: Person._make(row) for row in await fetch(session, _PEOPLE, {"user_ids": list(user_ids)})}


async def group_names(session: AsyncSession, group_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not group_ids:
        return {}
    statement = select(Group.id, Group.name).where(Group.id.in_(list(group_ids)))
    return {row[0]: row[1] for row in (await session.execute(statement)).all()}


async def list_version(session: AsyncSession, provider_id: uuid.UUID, *, lock: bool = False) -> int:
    """The list's version; `lock`: held (FOR SHARE) to commit, so no save moves it meanwhile."""
    statement = select(DelegationList.version).where(DelegationList.provider_id == provider_id)
    if lock:
        statement = statement.with_for_update(read=True)
    return (await session.execute(statement)).scalar_one_or_none() or 0


# Attestations and reminders


def add_attestation(session: AsyncSession, attestation: AccessReviewAttestation) -> None:
    session.add(attestation)


async def last_attestations(session: AsyncSession, provider_ids: Sequence[uuid.UUID]
                            ) -> dict[uuid.UUID, AccessReviewAttestation]:
    if not provider_ids:
        return {}
    statement = (
        select(AccessReviewAttestation)
        .where(AccessReviewAttestation.provider_id.in_(list(provider_ids)))
        .order_by(AccessReviewAttestation.provider_id, AccessReviewAttestation.created_at.desc(),
                  AccessReviewAttestation.id)
        .ext(distinct_on(AccessReviewAttestation.provider_id))
    )
    return {a.provider_id: a for a in (await session.execute(statement)).scalars()}


async def providers_of_companies(session: AsyncSession, company_ids: Sequence[uuid.UUID], limit: int,
                                 after: tuple[str, uuid.UUID] | None) -> list[User]:
    """Providers of the companies, by name, limit + 1."""
    statement = select(User).where(User.company_id.in_(list(company_ids)), User.is_provider)
    if after is not None:
        statement = statement.where(tuple_(User.display_name, User.id) > tuple_(*after))
    statement = statement.order_by(User.display_name, User.id).limit(limit + 1)
    return list((await session.execute(statement)).scalars())


async def active_providers(session: AsyncSession) -> list[tuple[User, Company]]:
    """Every active provider with an email address, and their company: whom the reminders are for."""
    statement = (
        select(User, Company).join(Company, Company.id == User.company_id)
        .where(User.is_provider, User.status == UserStatus.active, User.kind == UserKind.member)
        .order_by(User.id)
    )
    return [(user, company) for user, company in (await session.execute(statement)).all()]


async def claim_reminder(session: AsyncSession, provider_id: uuid.UUID, due_at: datetime, period: int) -> bool:
    """Record the reminder of `period` intervals after `due_at`; False if it was recorded already (by this or
    another worker): the email is queued only with the row that claims it."""
    statement = (
        insert(AccessReviewReminder)
        .values(provider_id=provider_id, due_at=due_at, period=period, sent_at=func.now())
        .on_conflict_do_nothing()
        .returning(AccessReviewReminder.provider_id)
    )
    return (await session.execute(statement)).first() is not None
