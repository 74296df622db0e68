"""Bills: the dashboard's pages, single bills and their lines, and the draft's writes."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import Select, bindparam, delete, exists, func, select

from billing_api.bills.repository.dashboard import (
    BillFilters, conditions, dashboard_statement, newest_first, page_limit, page_params, page_select,
)
from billing_api.bills.repository.scoped import ScopedRepository
from billing_api.db import Record, fetch
from billing_api.models import Bill, BillLine, Coverage


class BillRepository(ScopedRepository):
    # Reads

    def dashboard_statement(
        self, filters: BillFilters, limit: int, after: tuple[datetime, uuid.UUID] | None = None, *,
        presented: bool = False,
    ) -> tuple[Select, dict]:
        """The dashboard statement and its parameters (also for benchmarks and plan checks)."""
        used, keyset = tuple(filters.values()), after is not None
        statement = self._statement("dashboard", used, keyset, presented,
                                    build=lambda: dashboard_statement(self.scope, used, keyset, presented))
        return statement, {**self.scope.params, **page_params(filters, limit, after)}

    def _page_statement(self, filters: BillFilters, limit: int, after: tuple[datetime, uuid.UUID] | None,
                        presented: bool) -> tuple[Select, dict]:
        used, keyset = tuple(filters.values()), after is not None
        if not {"provider_id", "patient_id"} & set(used):
            return self.dashboard_statement(filters, limit + 1, after, presented=presented)
        # One provider's or one patient's bills: their own index, the scope as a row predicate.
        statement = self._statement("predicate_page", used, keyset, presented, build=lambda: (
            page_select(presented)
            .where(self._visible(), *conditions(Bill, used, keyset))
            .order_by(*newest_first(Bill))
            .limit(page_limit())
        ))
        return statement, {**self.scope.params, **page_params(filters, limit + 1, after)}

    async def page(
        self, filters: BillFilters, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Bill]:
        """Newest first, limit + 1 bills, in one statement."""
        statement, params = self._page_statement(filters, limit, after, presented=False)
        return list((await self.session.execute(statement, params)).scalars())

    async def presented_page(
        self, filters: BillFilters, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Record]:
        """The same page as rows of what the API shows (`BILL_FIELDS`; `lines` decoded from JSON), lines included,
        in one statement: the dashboard and the patient chart, the hottest reads, skip the ORM and SQLAlchemy's
        execution (`db.fetch`)."""
        statement, params = self._page_statement(filters, limit, after, presented=True)
        return await fetch(self.session, statement, params)

    async def get(self, bill_id: uuid.UUID, *, for_update: bool = False) -> Bill | None:
        def build() -> Select:
            statement = select(Bill).where(Bill.id == bindparam("bill_id"), self._visible())
            return statement.with_for_update(of=Bill) if for_update else statement

        statement = self._statement("get", for_update, build=build)
        return (await self._run(statement, bill_id=bill_id)).scalar_one_or_none()

    async def for_encounter(self, encounter_id: uuid.UUID) -> list[Bill]:
        statement = self._statement("for_encounter", build=lambda: (
            select(Bill)
            .where(Bill.encounter_id == bindparam("encounter_id"), self._visible())
            .order_by(*newest_first(Bill))
        ))
        return list((await self._run(statement, encounter_id=encounter_id)).scalars())

    async def for_visits(
        self, visit_ids: list[uuid.UUID], coverage: Coverage | None = None
    ) -> dict[uuid.UUID, list[Bill]]:
        if not visit_ids:
            return {}

        def build() -> Select:
            statement = select(Bill).where(Bill.visit_id.in_(bindparam("visit_ids", expanding=True)),
                                           self._visible())
            if coverage is not None:
                statement = statement.where(Bill.coverage == bindparam("filter_coverage"))
            return statement.order_by(*newest_first(Bill))

        params: dict[str, object] = {"visit_ids": visit_ids}
        if coverage is not None:
            params["filter_coverage"] = coverage
        by_visit: dict[uuid.UUID, list[Bill]] = defaultdict(list)
        statement = self._statement("for_visits", coverage is not None, build=build)
        for bill in (await self._run(statement, **params)).scalars():
            by_visit[bill.visit_id].append(bill)
        return by_visit

    async def lines(self, bill_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[BillLine]]:
        """Lines of bills this scope can see (the join repeats the scope, so ids alone reveal nothing)."""
        if not bill_ids:
            return {}
        statement = self._statement("lines", build=lambda: (
            select(BillLine)
            .join(Bill, Bill.id == BillLine.bill_id)
            .where(BillLine.bill_id.in_(bindparam("bill_ids", expanding=True)), self._visible())
            .order_by(BillLine.bill_id, BillLine.position)
        ))
        by_bill: dict[uuid.UUID, list[BillLine]] = defaultdict(list)
        for line in (await self._run(statement, bill_ids=bill_ids)).scalars():
            by_bill[line.bill_id].append(line)
        return by_bill

    async def counts_by_provider(self, company_id: uuid.UUID) -> dict[uuid.UUID, int]:
        """How many bills of each provider in the company this scope sees."""
        statement = self._statement("counts_by_provider", build=lambda: (
            select(Bill.provider_id, func.count())
            .where(Bill.company_id == bindparam("company_id"), self._visible())
            .group_by(Bill.provider_id)
        ))
        return {provider_id: count for provider_id, count in (await self._run(statement, company_id=company_id)).all()}

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
        await self._run(delete(BillLine).where(
            BillLine.bill_id == bill.id, exists().where(Bill.id == bill.id, self._visible())
        ))
        self.session.add_all(lines)
        await self.session.flush()

    async def delete(self, bill_id: uuid.UUID) -> bool:
        result = await self._run(
            delete(Bill).where(Bill.id == bill_id, self._visible()).execution_options(synchronize_session="fetch")
        )
        return result.rowcount == 1
