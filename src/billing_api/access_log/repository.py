"""All SQL of the access log (its entries, its month partitions and their retention), and the verification of both
hash chains (audit_event and access_log).

The insert is one statement per request: the grants ("on whose behalf") are computed inside it from the
rules of authz/rules.py for the provider and company pairs that were shown, with the scope's actor bound
as the one parameter the bill scope uses. The chain columns are set by the database (migration 0010; the chains'
heads kept in `chain_head` since migration access_log_partitions)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
import re
from dataclasses import dataclass, field
from datetime import date, datetime
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
MONTH_PARTITION = re.compile(r"access_log_y(?P<year>\d{4})m(?P<month>\d{2})")

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
class Cut:
    """A month of the access log dropped by the retention (housekeeping/), as its audit event recorded it."""

    month: str
    rows: int
    dropped_at: str


@dataclass(frozen=True)
class ChainReport:
    table: str
    rows: int
    # The last link of each chain. Keep them somewhere else (a daily copy): rows cut from the end of a chain,
    # or a whole chain removed, show only against an older copy of the heads (or against `chain_head`, which the
    # walk checks too, unless someone with the rights to alter the table altered it as well).
    heads: list[ChainHead]
    # The first link that does not hold: its chain, chain_seq and what is wrong (`missing_rows` before it,
    # `broken_link`: prev_hash is not the previous row's hash, `altered_row`: the row's content no longer gives
    # its hash). Rows missing from a chain's end are reported at one past its last row (the head's next link).
    broken_chain: int | None = None
    broken_at: int | None = None
    problem: str | None = None
    # Months dropped by the retention: the gaps they left are where the chains were cut, not tampering.
    cuts: list[Cut] = field(default_factory=list)
    # Rows in the access log's default partition (months that had no partition when they were written).
    default_partition_rows: int | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


MONTH_DROPPED = "access_log.month_dropped"

# Each link beside the one before it in its chain, and after each chain's last row the link its head
# (`chain_head`) says comes next, so rows missing from the end show as well. A gap is a cut, not missing rows, when
# the runs that the retention recorded as dropped fill it exactly and the row after it links to the last of them.
_FIRST_BROKEN = """
    WITH cut_runs AS MATERIALIZED (
        SELECT (run->>'chain_id')::int AS chain_id, (run->>'from_seq')::bigint AS from_seq,
               (run->>'to_seq')::bigint AS to_seq, decode(run->>'last_row_hash', 'hex') AS last_row_hash
          FROM audit_event e CROSS JOIN jsonb_array_elements(e.details->'runs') AS run
         WHERE e.action = :cut_action AND :table = 'access_log'
    ), links AS (
        SELECT chain_id, chain_seq, prev_hash, row_hash, recomputed,
               coalesce(lag(chain_seq) OVER w, 0) AS before_seq, lag(row_hash) OVER w AS before_hash
          FROM (SELECT t.chain_id, t.chain_seq, t.prev_hash, t.row_hash, chain_hash(t.prev_hash, t) AS recomputed
                  FROM {table} t
                UNION ALL
                SELECT h.chain_id, h.last_seq + 1, h.last_hash, NULL, NULL
                  FROM chain_head h WHERE h.table_name = :table) chained
        WINDOW w AS (PARTITION BY chain_id ORDER BY chain_seq)
    ), checked AS (
        SELECT l.*, CASE WHEN l.chain_seq > l.before_seq + 1 THEN (
                   SELECT coalesce(sum(c.to_seq - c.from_seq + 1), 0) = l.chain_seq - l.before_seq - 1
                          AND coalesce(bool_or(c.to_seq = l.chain_seq - 1 AND c.last_row_hash = l.prev_hash), false)
                     FROM (SELECT DISTINCT * FROM cut_runs) c
                    WHERE c.chain_id = l.chain_id AND c.from_seq > l.before_seq AND c.to_seq < l.chain_seq)
               END AS gap_is_cut
          FROM links l
    )
    SELECT chain_id, chain_seq,
           CASE WHEN chain_seq > before_seq + 1 AND NOT gap_is_cut THEN 'missing_rows'
                WHEN chain_seq <= before_seq + 1 AND prev_hash IS DISTINCT FROM before_hash THEN 'broken_link'
                ELSE 'altered_row' END
      FROM checked
     WHERE (chain_seq > before_seq + 1 AND NOT gap_is_cut)
        OR (chain_seq <= before_seq + 1 AND prev_hash IS DISTINCT FROM before_hash)
        OR (recomputed IS NOT NULL AND row_hash IS DISTINCT FROM recomputed)
     ORDER BY chain_id, chain_seq LIMIT 1
"""


async def verify_chain(session: AsyncSession, table: str) -> ChainReport:
    """Walk every chain of one table in chain_seq order (across the access log's partitions) in one statement and
    report the first broken link, and the cuts the retention made."""
    if table not in CHAINED_TABLES:
        raise ValueError(f"not a chained table: {table}")
    params = {"table": table, "cut_action": MONTH_DROPPED}
    heads = text(f"""
        SELECT DISTINCT ON (chain_id) chain_id, chain_seq, encode(row_hash, 'hex')
          FROM {table} ORDER BY chain_id, chain_seq DESC
    """)
    rows = (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
    head_list = [ChainHead(*head) for head in (await session.execute(heads)).all()]
    broken = (await session.execute(text(_FIRST_BROKEN.format(table=table)), params)).first()
    cuts, default_rows = [], None
    if table == "access_log":
        cuts = [Cut(month, int(count), dropped_at.isoformat()) for month, count, dropped_at in (await session.execute(
            text("""SELECT details->>'month', (details->>'rows')::bigint, created_at FROM audit_event
                     WHERE action = :cut_action ORDER BY details->>'month', created_at"""), params)).all()]
        default_rows = int((await session.execute(text("SELECT count(*) FROM access_log_default"))).scalar_one())
    return ChainReport(table, int(rows), head_list, *(broken or (None, None, None)), cuts=cuts,
                       default_partition_rows=default_rows)


async def verify_chains(session: AsyncSession) -> list[ChainReport]:
    return [await verify_chain(session, table) for table in CHAINED_TABLES]


# Partitions and retention (the worker's housekeeping). Month partitions are made by the database's
# access_log_partition() only, so their names say their months.
PARTITIONS_LOCK_KEY = 80_012


async def lock_partitions(session: AsyncSession) -> bool:
    """Whether this transaction now holds the partition maintenance lock (another worker may hold it)."""
    return bool((await session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                        {"key": PARTITIONS_LOCK_KEY})).scalar_one())


async def make_partition(session: AsyncSession, month: date) -> str | None:
    """The month's partition, made if absent; None when rows of that month sit in the default partition."""
    return (await session.execute(text("SELECT access_log_partition(:month)::text"), {"month": month})).scalar_one()


async def months_in_default_partition(session: AsyncSession) -> list[date]:
    return list((await session.execute(text(
        "SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC')::date FROM access_log_default "
        "ORDER BY 1"))).scalars())


async def month_partitions(session: AsyncSession) -> dict[date, str]:
    """The month partitions there are, by first day of the month."""
    names = (await session.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'access_log'::regclass"))).scalars()
    months = {}
    for name in names:
        if (match := MONTH_PARTITION.fullmatch(name)) is not None:
            months[date(int(match["year"]), int(match["month"]), 1)] = name
    return dict(sorted(months.items()))


async def dropped_runs(session: AsyncSession, partition: str) -> tuple[int, list[dict]]:
    """What dropping the partition takes away: its rows, and per chain the runs of consecutive chain_seq values
    (gaps and islands), each with the hash of its last row, which the next link of the chain points to."""
    if MONTH_PARTITION.fullmatch(partition) is None:
        raise ValueError(f"not a month partition: {partition}")
    runs = (await session.execute(text(f"""
        SELECT chain_id, min(chain_seq) AS from_seq, max(chain_seq) AS to_seq,
               encode((array_agg(row_hash ORDER BY chain_seq DESC))[1], 'hex') AS last_row_hash, count(*) AS rows
          FROM (SELECT chain_id, chain_seq, row_hash,
                       chain_seq - row_number() OVER (PARTITION BY chain_id ORDER BY chain_seq) AS island
                  FROM "{partition}") links
         GROUP BY chain_id, island ORDER BY chain_id, from_seq
    """))).mappings().all()
    return (sum(int(run["rows"]) for run in runs),
            [{key: run[key] for key in ("chain_id", "from_seq", "to_seq", "last_row_hash")} for run in runs])


async def drop_partition(session: AsyncSession, partition: str) -> None:
    if MONTH_PARTITION.fullmatch(partition) is None:
        raise ValueError(f"not a month partition: {partition}")
    await session.execute(text(f'DROP TABLE "{partition}"'))
