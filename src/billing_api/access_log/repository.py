"""All SQL of the access log, and the verification of both hash chains (audit_event and access_log).

The insert is one statement per request: the grants ("on whose behalf") are computed inside it from the
rules of authz/rules.py for the provider and company pairs that were shown, with the scope's actor bound
as the one parameter the bill scope uses. The chain columns are set by the database (migration 0010)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import (
    Insert,
    Select,
    bindparam,
    column,
    func,
    insert,
    literal,
    null,
    select,
    text,
    tuple_,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from billing_api.authz import rules
from billing_api.authz.permissions import Permission
from billing_api.authz.scope import ACTOR
from billing_api.db import fetch, write_many
from billing_api.models import AccessLogEntry, User

CHAINED_TABLES = ("audit_event", "access_log")

_UUIDS = ARRAY(UUID(as_uuid=True))


def _grants_json(permission: Permission):
    """`grants` of an entry: for each shown (provider, company) pair, every rule that granted it, as JSON."""
    actor = bindparam(ACTOR, type_=UUID(as_uuid=True))
    shown = (
        func.unnest(bindparam("shown_provider_ids", type_=_UUIDS), bindparam("shown_company_ids", type_=_UUIDS))
        .table_valued(column("provider_id", UUID(as_uuid=True)), column("company_id", UUID(as_uuid=True)))
        .render_derived(name="shown")
    )
    by_provider = rules.explained_provider_grants(actor, permission).subquery("by_provider")
    by_company = rules.company_wide_companies(actor, permission).subquery("by_company")
    no_id = null().cast(UUID(as_uuid=True))
    grants = union(
        select(shown.c.provider_id, shown.c.company_id, by_provider.c.rule, by_provider.c.entry_id,
               by_provider.c.group_id)
        .join_from(shown, by_provider, by_provider.c.provider_id == shown.c.provider_id),
        select(shown.c.provider_id, shown.c.company_id, rules.company_wide_rule(actor), no_id, no_id)
        .where(shown.c.company_id.in_(select(by_company.c.company_id))),
        select(shown.c.provider_id, shown.c.company_id, literal("support"), no_id, no_id)
        .where(rules.support_sees_all(actor, permission)),
    ).subquery("granted")
    granted = grants.c
    document = func.jsonb_strip_nulls(func.jsonb_build_object(
        "rule", granted.rule, "provider_id", granted.provider_id, "company_id", granted.company_id,
        "entry_id", granted.entry_id, "group_id", granted.group_id,
    ))
    ordered = aggregate_order_by(document, granted.provider_id, granted.company_id, granted.rule, granted.entry_id)
    # Grants decided by a policy rather than by bill access (automation managers) come in as `policy_grants`.
    return select(func.coalesce(func.jsonb_agg(ordered), text("'[]'::jsonb")).op("||")(
        bindparam("policy_grants", type_=JSONB))).scalar_subquery()


@lru_cache
def _insert(permission: Permission) -> Insert:
    """INSERT one entry, its grants computed in the statement (the reader's own transaction writes it)."""
    actor = bindparam(ACTOR, type_=UUID(as_uuid=True))
    # Into the table, not the ORM entity: an ORM-enabled insert with parameters takes SQLAlchemy's bulk path, which
    # rebuilds the statement and its cache key on every call (a fifth of a bill page's CPU); this one is built once.
    return insert(AccessLogEntry.__table__).values(
        id=func.gen_random_uuid(), created_at=func.now(), actor_id=actor,
        route=bindparam("route"), surface=bindparam("surface"), permission=permission.value,
        provider_ids=bindparam("provider_ids", type_=_UUIDS), patient_ids=bindparam("patient_ids", type_=_UUIDS),
        grants=_grants_json(permission), record_count=bindparam("record_count"),
        client_address=bindparam("client_address"), user_agent=bindparam("user_agent"),
    )


@lru_cache
def _grants(permission: Permission) -> Select:
    """The grants an entry would record, and the reading transaction's time, for a writer to insert later."""
    return select(_grants_json(permission).label("grants"), func.now().label("read_at"))


@lru_cache
def _insert_granted() -> Insert:
    """INSERT one entry whose grants and time the reader computed (`_grants`); the chain columns are the
    database's, as for every insert."""
    return insert(AccessLogEntry.__table__).values(
        id=func.gen_random_uuid(), created_at=bindparam("read_at"), actor_id=bindparam(ACTOR),
        route=bindparam("route"), surface=bindparam("surface"), permission=bindparam("permission"),
        provider_ids=bindparam("provider_ids", type_=_UUIDS), patient_ids=bindparam("patient_ids", type_=_UUIDS),
        grants=bindparam("grants", type_=JSONB), record_count=bindparam("record_count"),
        client_address=bindparam("client_address"), user_agent=bindparam("user_agent"),
    )


def entry_params(
    *, actor_id: uuid.UUID, permission: Permission, route: str, surface: str,
    pairs: list[tuple[uuid.UUID | None, uuid.UUID]], patient_ids: list[uuid.UUID], record_count: int,
    client_address: str | None, user_agent: str | None, policy_grants: Sequence[dict[str, str]] = (),
) -> dict:
    """The parameters of one entry, for `insert_entry` or for `granted_entry` and a writer."""
    return {
        ACTOR: actor_id, "permission": permission.value, "route": route, "surface": surface,
        "shown_provider_ids": [p for p, _ in pairs], "shown_company_ids": [c for _, c in pairs],
        "provider_ids": sorted({p for p, _ in pairs if p is not None}), "patient_ids": patient_ids,
        "record_count": record_count, "client_address": client_address, "user_agent": user_agent,
        "policy_grants": list(policy_grants),
    }


async def insert_entry(session: AsyncSession, permission: Permission, params: dict) -> None:
    """The entry, written by the reading transaction itself (it commits with the read)."""
    await fetch(session, _insert(permission), params)


async def granted_entry(session: AsyncSession, permission: Permission, params: dict) -> dict:
    """The entry with its grants computed now, in the reading transaction, as the rules stand for what it read;
    ready for `insert_granted` in another transaction."""
    (row,) = await fetch(session, _grants(permission), params)
    return {**params, "grants": row["grants"], "read_at": row["read_at"]}


async def insert_granted(connection: AsyncConnection, entries: list[dict]) -> None:
    """Entries from `granted_entry`, in one transaction of their own (one statement each, sent together)."""
    await write_many(connection, _insert_granted(), entries)


def _for_patient(patient_id: uuid.UUID, provider_id: uuid.UUID | None) -> Select:
    statement = (
        select(AccessLogEntry, User.display_name)
        .join(User, User.id == AccessLogEntry.actor_id)
        .where(AccessLogEntry.patient_ids.contains([patient_id]))
    )
    if provider_id is not None:
        statement = statement.where(AccessLogEntry.provider_ids.contains([provider_id]))
    return statement


async def list_for_patient(
    session: AsyncSession, patient_id: uuid.UUID, *, provider_id: uuid.UUID | None, limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[tuple[AccessLogEntry, str]]:
    """Entries that show the patient (only those showing `provider_id`'s data, when given), newest first,
    limit + 1. Newest by transaction time; requests of one transaction share it and one chain, so ties go by
    chain and place in it. The cursor's row id names the place."""
    statement = _for_patient(patient_id, provider_id)
    order = (AccessLogEntry.created_at, AccessLogEntry.chain_id, AccessLogEntry.chain_seq)
    if after is not None:
        place = select(*order).where(AccessLogEntry.id == after[1])
        statement = statement.where(tuple_(*order) < place.scalar_subquery())
    statement = statement.order_by(*(key.desc() for key in order)).limit(limit + 1)
    return [(entry, name) for entry, name in (await session.execute(statement)).all()]


@dataclass(frozen=True)
class ChainHead:
    chain_id: int
    seq: int
    hash: str


@dataclass(frozen=True)
class ChainReport:
    table: str
    rows: int
    # The last link of each chain. Keep them somewhere else (a daily copy): rows cut from the end of a chain,
    # or a whole chain removed, show only against an older copy of the heads.
    heads: list[ChainHead]
    # The first link that does not hold: its chain, chain_seq and what is wrong (`missing_rows` before it,
    # `broken_link`: prev_hash is not the previous row's hash, `altered_row`: the row's content no longer gives
    # its hash).
    broken_chain: int | None = None
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


async def verify_chain(session: AsyncSession, table: str) -> ChainReport:
    """Walk every chain of one table in chain_seq order in one statement and report the first broken link."""
    if table not in CHAINED_TABLES:
        raise ValueError(f"not a chained table: {table}")
    first_broken = text(f"""
        SELECT chain_id, chain_seq,
               CASE WHEN chain_seq <> coalesce(before_seq, 0) + 1 THEN 'missing_rows'
                    WHEN prev_hash IS DISTINCT FROM before_hash THEN 'broken_link'
                    ELSE 'altered_row' END
          FROM (SELECT t.chain_id, t.chain_seq, t.prev_hash, t.row_hash, chain_hash(t.prev_hash, t) AS recomputed,
                       lag(t.chain_seq) OVER w AS before_seq, lag(t.row_hash) OVER w AS before_hash
                  FROM {table} t WINDOW w AS (PARTITION BY t.chain_id ORDER BY t.chain_seq)) links
         WHERE chain_seq <> coalesce(before_seq, 0) + 1 OR prev_hash IS DISTINCT FROM before_hash
            OR row_hash IS DISTINCT FROM recomputed
         ORDER BY chain_id, chain_seq LIMIT 1
    """)
    heads = text(f"""
        SELECT DISTINCT ON (chain_id) chain_id, chain_seq, encode(row_hash, 'hex')
          FROM {table} ORDER BY chain_id, chain_seq DESC
    """)
    rows = (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
    head_list = [ChainHead(*head) for head in (await session.execute(heads)).all()]
    broken = (await session.execute(first_broken)).first()
    return ChainReport(table, int(rows), head_list, *(broken or (None, None, None)))


async def verify_chains(session: AsyncSession) -> list[ChainReport]:
    return [await verify_chain(session, table) for table in CHAINED_TABLES]
