"""All SQL that touches bills. Built only with a BillScope; every statement carries it (no unscoped read)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    union,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from billing_api.authz.rules import may_on_provider
from billing_api.authz.scope import BillScope
from billing_api.models import Bill, BillLine, BillStatus, Coverage, ProviderBillCount

# The dashboard's choice of access path (see BillRepository._mode); measured with bench/run.py.
NARROW_SOURCE_LIMIT = 200
NARROW_BIAS = 2


@dataclass(frozen=True)
class BillFilters:
    provider_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    status: BillStatus | None = None
    coverage: Coverage | None = None
    service_date_from: date | None = None
    service_date_to: date | None = None


def _conditions(table, filters: BillFilters, after: tuple[datetime, uuid.UUID] | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.provider_id is not None:
        conditions.append(table.provider_id == filters.provider_id)
    if filters.patient_id is not None:
        conditions.append(table.patient_id == filters.patient_id)
    if filters.company_id is not None:
        conditions.append(table.company_id == filters.company_id)
    if filters.status is not None:
        conditions.append(table.status == filters.status)
    if filters.coverage is not None:
        conditions.append(table.coverage == filters.coverage)
    if filters.service_date_from is not None:
        conditions.append(table.service_date >= filters.service_date_from)
    if filters.service_date_to is not None:
        conditions.append(table.service_date <= filters.service_date_to)
    if after is not None:
        conditions.append(tuple_(table.created_at, table.id) < tuple_(*after))
    return conditions


def _newest_first(table) -> tuple:
    return table.created_at.desc(), table.id.desc()


class BillRepository:
    def __init__(self, session: AsyncSession, scope: BillScope) -> None:
        if not isinstance(scope, BillScope):
            raise TypeError("a BillRepository needs the BillScope of the request")
        self.session = session
        self.scope = scope

    def _visible(self, table=Bill) -> ColumnElement[bool]:
        return self.scope.allows(table.provider_id, table.company_id)

    # Reads

    async def page(
        self, filters: BillFilters, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Bill]:
        """Newest first, limit + 1 rows, in one statement."""
        if filters.provider_id is not None or filters.patient_id is not None:
            # One provider's or one patient's bills: their own index, the scope as a row predicate.
            statement = (
                select(Bill)
                .where(self._visible(), *_conditions(Bill, filters, after))
                .order_by(*_newest_first(Bill))
                .limit(limit + 1)
            )
        else:
            statement = self._dashboard_statement(filters, limit + 1, after)
        return list((await self.session.execute(statement)).scalars())

    def _dashboard_statement(
        self, filters: BillFilters, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> Select[tuple[Bill]]:
        """One statement (PERF-NOTES). Support (rule 2) walks the newest-first index behind an in-statement
        check. Everyone else has the scope computed in CTEs, then one of two branches runs, chosen in the
        statement from the exact bill counts of what the scope covers:
        `narrow` takes the newest keys of each visible provider and company from their own indexes and
        merges them; `wide` walks the newest-first (covering) index keeping visible rows."""
        conditions = _conditions(Bill, filters, after)
        if self.scope.is_support:
            return (
                select(Bill).where(self.scope.sees_all(), *conditions).order_by(*_newest_first(Bill)).limit(limit)
            )
        providers = self.scope.providers().cte("scope_providers")
        companies = self.scope.companies().cte("scope_companies")
        mode = select(self._mode(providers, companies).label("mode")).cte("scope_mode")

        def mode_is(name: str) -> ColumnElement[bool]:
            return select(mode.c.mode).scalar_subquery() == name

        wide = (
            select(Bill.id, Bill.created_at)
            .where(
                mode_is("wide"),
                or_(
                    Bill.provider_id.in_(select(providers.c.provider_id)),
                    Bill.company_id.in_(select(companies.c.company_id)),
                ),
                *conditions,
            )
            .order_by(*_newest_first(Bill))
            .limit(limit)
        )
        of_provider = aliased(Bill, name="provider_bill")
        newest_of_provider = (
            select(of_provider.id, of_provider.created_at)
            .where(of_provider.provider_id == providers.c.provider_id, *_conditions(of_provider, filters, after))
            .order_by(*_newest_first(of_provider))
            .limit(limit)
            .lateral("newest_of_provider")
        )
        of_company = aliased(Bill, name="company_bill")
        newest_of_company = (
            select(of_company.id, of_company.created_at)
            .where(of_company.company_id == companies.c.company_id, *_conditions(of_company, filters, after))
            .order_by(*_newest_first(of_company))
            .limit(limit)
            .lateral("newest_of_company")
        )
        narrow_keys = union(  # a bill reached both ways counts once
            select(newest_of_provider.c.id, newest_of_provider.c.created_at)
            .select_from(providers).join(newest_of_provider, true()),
            select(newest_of_company.c.id, newest_of_company.c.created_at)
            .select_from(companies).join(newest_of_company, true()),
        ).subquery("narrow_keys")
        narrow = (
            select(narrow_keys.c.id, narrow_keys.c.created_at)
            .where(mode_is("narrow"))
            .order_by(narrow_keys.c.created_at.desc(), narrow_keys.c.id.desc())
            .limit(limit)
        )
        keys = union_all(wide.subquery().select(), narrow.subquery().select()).subquery("page_keys")
        return select(Bill).where(Bill.id.in_(select(keys.c.id))).order_by(*_newest_first(Bill))

    @staticmethod
    def _mode(providers, companies) -> ColumnElement[str]:
        """`narrow` when probing each source costs less than walking the whole index to the 50th visible
        bill: sources x visible bills x NARROW_BIAS <= all bills (probes read about `limit` keys per source,
        and the walk about `limit` x all / visible keys). Counts are exact (provider_bill_count)."""
        provider_count = select(func.count()).select_from(providers).scalar_subquery()
        company_count = select(func.count()).select_from(companies).scalar_subquery()
        visible_bills = (
            select(func.coalesce(func.sum(ProviderBillCount.bill_count), 0))
            .where(ProviderBillCount.provider_id.in_(select(providers.c.provider_id)))
            .scalar_subquery()
            + select(func.coalesce(func.sum(ProviderBillCount.bill_count), 0))
            .where(ProviderBillCount.company_id.in_(select(companies.c.company_id)))
            .scalar_subquery()
        )
        all_bills = select(func.greatest(literal_column("reltuples"), 1)).select_from(
            text("pg_class")).where(text("oid = 'bill'::regclass")).scalar_subquery()
        return case(
            # Past this many sources the sum itself costs too much, and the walk is certainly cheaper.
            (provider_count + company_count > NARROW_SOURCE_LIMIT, "wide"),
            ((provider_count + company_count) * visible_bills * NARROW_BIAS <= all_bills, "narrow"),
            else_="wide",
        )

    async def get(self, bill_id: uuid.UUID, *, for_update: bool = False) -> Bill | None:
        statement = select(Bill).where(Bill.id == bill_id, self._visible())
        if for_update:
            statement = statement.with_for_update(of=Bill)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def for_encounter(self, encounter_id: uuid.UUID) -> list[Bill]:
        statement = (
            select(Bill).where(Bill.encounter_id == encounter_id, self._visible()).order_by(*_newest_first(Bill))
        )
        return list((await self.session.execute(statement)).scalars())

    async def for_visits(
        self, visit_ids: list[uuid.UUID], coverage: Coverage | None = None
    ) -> dict[uuid.UUID, list[Bill]]:
        if not visit_ids:
            return {}
        statement = (
            select(Bill).where(Bill.visit_id.in_(visit_ids), self._visible()).order_by(*_newest_first(Bill))
        )
        if coverage is not None:
            statement = statement.where(Bill.coverage == coverage)
        by_visit: dict[uuid.UUID, list[Bill]] = defaultdict(list)
        for bill in (await self.session.execute(statement)).scalars():
            by_visit[bill.visit_id].append(bill)
        return by_visit

    async def lines(self, bill_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[BillLine]]:
        """Lines of bills this scope can see (the join repeats the scope, so ids alone reveal nothing)."""
        if not bill_ids:
            return {}
        statement = (
            select(BillLine)
            .join(Bill, Bill.id == BillLine.bill_id)
            .where(BillLine.bill_id.in_(bill_ids), self._visible())
            .order_by(BillLine.bill_id, BillLine.position)
        )
        by_bill: dict[uuid.UUID, list[BillLine]] = defaultdict(list)
        for line in (await self.session.execute(statement)).scalars():
            by_bill[line.bill_id].append(line)
        return by_bill

    async def counts_by_provider(self, company_id: uuid.UUID) -> dict[uuid.UUID, int]:
        """How many bills of each provider in the company this scope sees."""
        statement = (
            select(Bill.provider_id, func.count())
            .where(Bill.company_id == company_id, self._visible())
            .group_by(Bill.provider_id)
        )
        return {provider_id: count for provider_id, count in (await self.session.execute(statement)).all()}

    async def permits(self, provider_id: uuid.UUID, company_id: uuid.UUID) -> bool:
        """May this scope act on bills of `provider_id` kept in `company_id` (for creating one)."""
        statement = select(may_on_provider(self.scope.actor_id, self.scope.permission, provider_id, company_id))
        return bool((await self.session.execute(statement)).scalar_one())

    # Writes: each statement re-checks the scope in its WHERE clause.

    async def add(self, bill: Bill, lines: list[BillLine]) -> None:
        # Callers check first and answer 403/404; this guards against a caller that forgot.
        if not await self.permits(bill.provider_id, bill.company_id):
            raise PermissionError("this scope may not create bills for that provider")
        self.session.add(bill)
        await self.session.flush()
        self.session.add_all(lines)
        await self.session.flush()

    async def replace_lines(self, bill: Bill, lines: list[BillLine]) -> None:
        await self.session.execute(
            delete(BillLine).where(BillLine.bill_id == bill.id, exists().where(Bill.id == bill.id, self._visible()))
        )
        self.session.add_all(lines)
        await self.session.flush()

    async def set_status(self, bill_id: uuid.UUID, status: BillStatus, **values) -> bool:
        result = await self.session.execute(
            update(Bill)
            .where(Bill.id == bill_id, self._visible())
            .values(status=status, **values)
            .execution_options(synchronize_session="fetch")
        )
        return result.rowcount == 1

    async def delete(self, bill_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            delete(Bill).where(Bill.id == bill_id, self._visible()).execution_options(synchronize_session="fetch")
        )
        return result.rowcount == 1
