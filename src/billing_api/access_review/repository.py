"""All SQL of access reviews: who holds which grant to a provider's bills, how each grant was used (rolled up from
the access log, plus the rows not rolled up yet), attestations and reminders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Select, and_, bindparam, cast, func, literal, null, or_, select, text, tuple_, union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz.repository import users_reaching
from billing_api.authz.rules import entry_is_live
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


@dataclass
class Grant:
    provider_id: uuid.UUID
    user_id: uuid.UUID
    rule: str
    via_id: uuid.UUID
    entry_id: uuid.UUID | None
    group_id: uuid.UUID | None
    company_id: uuid.UUID | None
    role: str | None
    permissions: list[str] | None
    expires_at: datetime | None
    entry_created_at: datetime | None
    display_name: str
    username: str
    email: str
    active: bool
    account_type: str
    user_created_at: datetime
    last_read_at: datetime | None


def _no_id():
    return cast(null(), UUID(as_uuid=True))


def _holders(provider: User, segregated: bool) -> list[Select]:
    """Every grant to `provider`'s bills: (user_id, rule, via_id, entry_id, group_id, company_id, and the list
    entry's role, permissions, expiry and creation). Unlike the transparency listing, people a list names stay
    here when deactivated (their entries would grant again on reactivation); rule 6 and support grant only while
    active, so only active people hold those."""
    not_support = User.account_type != AccountType.support
    entry = (DelegationEntry.role, DelegationEntry.permissions, DelegationEntry.expires_at,
             DelegationEntry.created_at)
    no_entry = tuple(cast(null(), column.type) for column in entry)
    own = select(
        User.id.label("user_id"), literal("own_bills").label("rule"), literal(NO_VIA).label("via_id"),
        _no_id().label("entry_id"), _no_id().label("group_id"), _no_id().label("company_id"),
        *(value.label(column.key) for value, column in zip(no_entry, entry, strict=True)),
    ).where(User.id == provider.id, User.is_provider)
    rows = [
        own,
        select(DelegationEntry.user_id, literal("delegation_user"), literal(NO_VIA), DelegationEntry.id, _no_id(),
               _no_id(), *entry)
        .join(User, User.id == DelegationEntry.user_id)
        .where(DelegationEntry.provider_id == provider.id, entry_is_live(), not_support),
        select(GroupMember.user_id, literal("delegation_group"), DelegationEntry.group_id, DelegationEntry.id,
               DelegationEntry.group_id, _no_id(), *entry)
        .join(GroupMember, GroupMember.group_id == DelegationEntry.group_id)
        .join(User, User.id == GroupMember.user_id)
        .where(DelegationEntry.provider_id == provider.id, entry_is_live(), not_support),
        select(User.id, literal("support"), literal(NO_VIA), _no_id(), _no_id(), _no_id(), *no_entry)
        .where(User.account_type == AccountType.support, User.status == UserStatus.active),
    ]
    if not segregated:
        reaching = users_reaching(provider.company_id, members_only=True).subquery()
        rows.append(
            select(User.id, literal("company_wide"), literal(provider.company_id), _no_id(), _no_id(),
                   literal(provider.company_id), *no_entry)
            .where(User.id.in_(select(reaching.c.user_id)), User.status == UserStatus.active, not_support)
        )
    return rows


def _unrolled_keys(provider_filter: bool) -> str:
    """The keyed rows of the access log not rolled up yet (all of them: the worker keeps this short)."""
    rows = _UNROLLED.format(limit="ALL")
    if provider_filter:
        rows = rows.replace("AND l.chain_seq >", "AND l.provider_ids @> ARRAY[CAST(:provider_id AS uuid)] "
                                                  "AND l.chain_seq >")
    return _KEYED.format(rows=f"({rows})")


async def grants_of(session: AsyncSession, provider: User, segregated: bool) -> list[Grant]:
    """Every grant to the provider's bills with its holder and when it was last used (rolled up, and the rows
    not rolled up yet), by holder name. Counts are not read here (`count_reads`, for a page's holders)."""
    h = union_all(*_holders(provider, segregated)).subquery("holders").c
    tail = text(f"""
        SELECT k.user_id, k.rule, k.via_id, max(k.created_at) AS last_read_at
          FROM ({_unrolled_keys(provider_filter=True)}) k
         WHERE k.provider_id = :provider_id GROUP BY 1, 2, 3
    """).bindparams(bindparam("provider_id", type_=UUID(as_uuid=True))).columns(
        user_id=UUID(as_uuid=True), rule=DelegationEntry.role.type, via_id=UUID(as_uuid=True),
        last_read_at=AccessGrantUse.last_read_at.type,
    ).subquery("tail")
    rolled = select(AccessGrantUse).where(AccessGrantUse.provider_id == provider.id).subquery("rolled")
    statement = (
        select(h.user_id, h.rule, h.via_id, h.entry_id, h.group_id, h.company_id, h.role, h.permissions,
               h.expires_at, h.created_at, User.display_name, User.username, User.email,
               User.status == UserStatus.active, User.account_type, User.created_at,
               func.greatest(rolled.c.last_read_at, tail.c.last_read_at))
        .join(User, User.id == h.user_id)
        .outerjoin(rolled, and_(rolled.c.user_id == h.user_id, rolled.c.rule == h.rule,
                                rolled.c.via_id == h.via_id))
        .outerjoin(tail, and_(tail.c.user_id == h.user_id, tail.c.rule == h.rule, tail.c.via_id == h.via_id))
        .order_by(User.display_name, User.id, h.rule, h.via_id)
    )
    result = await session.execute(statement, {"provider_id": provider.id})
    return [
        Grant(provider_id=provider.id, user_id=row[0], rule=row[1], via_id=row[2], entry_id=row[3],
              group_id=row[4], company_id=row[5], role=row[6], permissions=row[7], expires_at=row[8],
              entry_created_at=row[9], display_name=row[10], username=row[11], email=row[12], active=row[13],
              account_type=row[14].value, user_created_at=row[15], last_read_at=row[16])
        for row in result.all()
    ]


async def count_reads(session: AsyncSession, provider_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
                      ) -> dict[tuple[uuid.UUID, str, uuid.UUID], tuple[int, int]]:
    """(user, rule, via) -> reads in the last 30 and 90 days (UTC days, today included), rolled up and not yet."""
    if not user_ids:
        return {}
    statement = text(f"""
        WITH today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS day),
        reads AS (
            SELECT user_id, rule, via_id, day, reads FROM access_grant_use_day
             WHERE provider_id = :provider_id AND user_id = ANY(:user_ids)
               AND day > (SELECT day FROM today) - 90
            UNION ALL
            SELECT user_id, rule, via_id, (created_at AT TIME ZONE 'UTC')::date, 1
              FROM ({_unrolled_keys(provider_filter=True)}) k
             WHERE provider_id = :provider_id AND user_id = ANY(:user_ids)
        )
        SELECT user_id, rule, via_id,
               coalesce(sum(reads) FILTER (WHERE day > (SELECT day FROM today) - 30), 0),
               coalesce(sum(reads) FILTER (WHERE day > (SELECT day FROM today) - 90), 0)
          FROM reads GROUP BY 1, 2, 3
    """).bindparams(bindparam("provider_id", type_=UUID(as_uuid=True)),
                    bindparam("user_ids", type_=ARRAY(UUID(as_uuid=True))))
    rows = await session.execute(statement, {"provider_id": provider_id, "user_ids": list(user_ids)})
    return {(user, rule, via): (int(d30), int(d90)) for user, rule, via, d30, d90 in rows.all()}


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


async def names(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not user_ids:
        return {}
    statement = select(User.id, User.display_name).where(User.id.in_(list(user_ids)))
    return {row[0]: row[1] for row in (await session.execute(statement)).all()}


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


async def attestations(session: AsyncSession, provider_id: uuid.UUID, limit: int,
                       after: tuple[datetime, uuid.UUID] | None) -> list[AccessReviewAttestation]:
    """Newest first, limit + 1."""
    statement = select(AccessReviewAttestation).where(AccessReviewAttestation.provider_id == provider_id)
    if after is not None:
        statement = statement.where(
            tuple_(AccessReviewAttestation.created_at, AccessReviewAttestation.id) < tuple_(*after))
    statement = statement.order_by(AccessReviewAttestation.created_at.desc(), AccessReviewAttestation.id.desc())
    return list((await session.execute(statement.limit(limit + 1))).scalars())


async def providers_of_companies(session: AsyncSession, company_ids: Sequence[uuid.UUID], limit: int,
                                 after: tuple[str, uuid.UUID] | None) -> list[User]:
    """Providers of the companies, by name, limit + 1."""
    statement = select(User).where(User.company_id.in_(list(company_ids)), User.is_provider)
    if after is not None:
        statement = statement.where(tuple_(User.display_name, User.id) > tuple_(*after))
    statement = statement.order_by(User.display_name, User.id).limit(limit + 1)
    return list((await session.execute(statement)).scalars())


async def companies(session: AsyncSession, company_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Company]:
    if not company_ids:
        return {}
    statement = select(Company).where(Company.id.in_(list(company_ids)))
    return {c.id: c for c in (await session.execute(statement)).scalars()}


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
