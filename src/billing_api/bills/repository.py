"""All SQL that touches bills. Built only with a BillScope; every statement carries it (no unscoped read).

Statements are built once per shape (permission, support or not, filters in use, ...) and reused with
new parameters, the actor among them: building these statements costs more than PostgreSQL spends
running them. A scope's SQL depends only on its permission and kind, so a shape's statement serves
every actor.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Executable,
    Select,
    bindparam,
    case,
    cast,
    column,
    delete,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    union,
    union_all,
)
from sqlalchemy import any_
from sqlalchemy.dialects.postgresql import ARRAY, UUID, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy import update  # payments
from sqlalchemy.orm.attributes import set_committed_value

from billing_api.authz.rules import may_on_provider
from billing_api.authz.scope import BillScope
from billing_api.db import Record, fetch
from billing_api.models import Bill, BillLine, BillStatus, Coverage, ProviderBillCount
from billing_api.models import Encounter, Patient, Payment

# The dashboard's choice of access path (see _mode); measured with bench/run.py.
NARROW_SOURCE_LIMIT = 200
NARROW_BIAS = 2

_statements: dict[tuple, Executable] = {}


@dataclass(frozen=True)
class BillFilters:
    provider_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    status: BillStatus | None = None
    coverage: Coverage | None = None
    service_date_from: date | None = None
    service_date_to: date | None = None

    def values(self) -> dict[str, object]:
        """The filters in use, by name; each is bound as `filter_<name>`."""
        return {name: value for name, value in self.__dict__.items() if value is not None}


_FILTER_TESTS: dict[str, Callable] = {
    "provider_id": lambda t: t.provider_id == bindparam("filter_provider_id"),
    "patient_id": lambda t: t.patient_id == bindparam("filter_patient_id"),
    "company_id": lambda t: t.company_id == bindparam("filter_company_id"),
    "status": lambda t: t.status == bindparam("filter_status"),
    "coverage": lambda t: t.coverage == bindparam("filter_coverage"),
    "service_date_from": lambda t: t.service_date >= bindparam("filter_service_date_from"),
    "service_date_to": lambda t: t.service_date <= bindparam("filter_service_date_to"),
}


def _conditions(table, used: tuple[str, ...], keyset: bool) -> list[ColumnElement[bool]]:
    conditions = [_FILTER_TESTS[name](table) for name in used]
    if keyset:
        after = tuple_(bindparam("after_created_at", type_=DateTime(timezone=True)),
                       bindparam("after_id", type_=UUID(as_uuid=True)))
        conditions.append(tuple_(table.created_at, table.id) < after)
    return conditions


def _page_limit():
    return bindparam("page_limit", type_=Integer)


def _page_params(filters: BillFilters, limit: int, after: tuple[datetime, uuid.UUID] | None) -> dict:
    params: dict[str, object] = {f"filter_{name}": value for name, value in filters.values().items()}
    params["page_limit"] = limit
    if after is not None:
        params["after_created_at"], params["after_id"] = after
    return params


def _newest_first(table) -> tuple:
    return table.created_at.desc(), table.id.desc()


def _lines_json() -> ColumnElement[str]:
    """The bill's lines as a JSON array in position order, built by PostgreSQL in the bill's own row: one
    statement for the page and its lines, and no second look at the scope (each bill of the page is visible)."""
    line = func.json_build_object(  # json, not jsonb: it keeps these keys in the order the API shows them
        "cpt_code", BillLine.cpt_code, "description", BillLine.description, "units", BillLine.units,
        "fee_cents", BillLine.fee_cents,
    )
    return (
        select(func.coalesce(func.json_agg(aggregate_order_by(line, BillLine.position)), text("'[]'::json")))
        .where(BillLine.bill_id == Bill.id)
        .scalar_subquery()
        .label("lines")
    )


def _page_select(presented: bool) -> Select:
    """A page's bills as ORM entities, or as rows of what the API shows of each bill (`BILL_FIELDS`)."""
    if not presented:
        return select(Bill)
    return select(*(_lines_json() if name == "lines" else getattr(Bill, name) for name in BILL_FIELDS))


# What the API shows of a bill, in its order (BillRead's fields).
BILL_FIELDS = ("id", "company_id", "provider_id", "patient_id", "encounter_id", "visit_id", "coverage", "status",
               "source", "service_date", "total_cents", "balance_cents", "lines", "created_at", "updated_at",
               "submitted_at")


def _dashboard_statement(scope: BillScope, used: tuple[str, ...], keyset: bool, presented: bool = False) -> Select:
    """One statement (docs/performance.md, "The dashboard statement"). Support (rule 2) walks the newest-first
    index behind an in-statement check. Everyone else has the scope computed in CTEs, then one of two branches
    runs, chosen in the statement from the exact bill counts of what the scope covers:
    `narrow` takes the newest keys of each visible provider and company from their own indexes and
    merges them; `wide` walks the newest-first (covering) index keeping visible rows. `presented`: the rows
    the API shows (BILL_FIELDS), not ORM entities."""
    limit = _page_limit()
    conditions = _conditions(Bill, used, keyset)
    if scope.is_support:
        return (_page_select(presented).where(scope.sees_all(), *conditions).order_by(*_newest_first(Bill))
                .limit(limit))
    providers = scope.providers().cte("scope_providers")
    companies = scope.companies().cte("scope_companies")
    mode = select(_mode(providers, companies).label("mode")).cte("scope_mode")

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

    def newest_of(column_name: str, sources, source_column, name: str):
        table = aliased(Bill, name=f"{name}_bill")
        return (
            select(table.id, table.created_at)
            .where(getattr(table, column_name) == source_column, *_conditions(table, used, keyset))
            .order_by(*_newest_first(table))
            .limit(limit)
            .lateral(f"newest_of_{name}")
        )

    of_provider = newest_of("provider_id", providers, providers.c.provider_id, "provider")
    of_company = newest_of("company_id", companies, companies.c.company_id, "company")
    narrow_keys = union(  # a bill reached both ways counts once
        select(of_provider.c.id, of_provider.c.created_at).select_from(providers).join(of_provider, true()),
        select(of_company.c.id, of_company.c.created_at).select_from(companies).join(of_company, true()),
    ).subquery("narrow_keys")
    narrow = (
        select(narrow_keys.c.id, narrow_keys.c.created_at)
        .where(mode_is("narrow"))
        .order_by(narrow_keys.c.created_at.desc(), narrow_keys.c.id.desc())
        .limit(limit)
    )
    keys = union_all(wide.subquery().select(), narrow.subquery().select()).subquery("page_keys")
    return _page_select(presented).where(Bill.id.in_(select(keys.c.id))).order_by(*_newest_first(Bill))


def _mode(providers, companies) -> ColumnElement[str]:
    """`narrow` when probing each source costs less than walking the whole index to the 50th visible
    bill: sources x visible bills x NARROW_BIAS <= all bills (probes read about `limit` keys per source,
    and the walk about `limit` x all / visible keys). Counts are exact (provider_bill_count)."""
    provider_count = select(func.count()).select_from(providers).scalar_subquery()
    company_count = select(func.count()).select_from(companies).scalar_subquery()
    # Summed by one index probe per source (correlated), never by scanning the whole count table.
    def bills_of(sources, source_column, count_column) -> ColumnElement[int]:
        per_source = (
            select(func.coalesce(func.sum(ProviderBillCount.bill_count), 0))
            .where(count_column == source_column)
            .scalar_subquery()
        )
        return select(func.coalesce(func.sum(per_source), 0)).select_from(sources).scalar_subquery()

    visible_bills = bills_of(providers, providers.c.provider_id, ProviderBillCount.provider_id) + bills_of(
        companies, companies.c.company_id, ProviderBillCount.company_id
    )
    all_bills = (
        select(func.greatest(literal_column("reltuples"), 1))
        .select_from(text("pg_class"))
        .where(text("oid = 'bill'::regclass"))
        .scalar_subquery()
    )
    return case(
        # Past this many sources the sum itself costs too much, and the walk is certainly cheaper.
        (provider_count + company_count > NARROW_SOURCE_LIMIT, "wide"),
        ((provider_count + company_count) * visible_bills * NARROW_BIAS <= all_bills, "narrow"),
        else_="wide",
    )


class BillRepository:
    def __init__(self, session: AsyncSession, scope: BillScope) -> None:
        if not isinstance(scope, BillScope):
            raise TypeError("a BillRepository needs the BillScope of the request")
        self.session = session
        self.scope = scope

    def _visible(self, table=Bill) -> ColumnElement[bool]:
        return self.scope.allows(table.provider_id, table.company_id)

    def _statement(self, *shape: object, build: Callable[[], Executable]) -> Executable:
        key = (self.scope.permission, self.scope.is_support, *shape)
        statement = _statements.get(key)
        if statement is None:
            statement = _statements[key] = build()
        return statement

    async def _run(self, statement: Executable, **params: object):
        return await self.session.execute(statement, {**self.scope.params, **params})

    # Reads

    def dashboard_statement(
        self, filters: BillFilters, limit: int, after: tuple[datetime, uuid.UUID] | None = None, *,
        presented: bool = False,
    ) -> tuple[Select, dict]:
        """The dashboard statement and its parameters (also for benchmarks and plan checks)."""
        used, keyset = tuple(filters.values()), after is not None
        statement = self._statement("dashboard", used, keyset, presented,
                                    build=lambda: _dashboard_statement(self.scope, used, keyset, presented))
        return statement, {**self.scope.params, **_page_params(filters, limit, after)}

    def _page_statement(self, filters: BillFilters, limit: int, after: tuple[datetime, uuid.UUID] | None,
                        presented: bool) -> tuple[Select, dict]:
        used, keyset = tuple(filters.values()), after is not None
        if not {"provider_id", "patient_id"} & set(used):
            return self.dashboard_statement(filters, limit + 1, after, presented=presented)
        # One provider's or one patient's bills: their own index, the scope as a row predicate.
        statement = self._statement("predicate_page", used, keyset, presented, build=lambda: (
            _page_select(presented)
            .where(self._visible(), *_conditions(Bill, used, keyset))
            .order_by(*_newest_first(Bill))
            .limit(_page_limit())
        ))
        return statement, {**self.scope.params, **_page_params(filters, limit + 1, after)}

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
            .order_by(*_newest_first(Bill))
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
            return statement.order_by(*_newest_first(Bill))

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

    # Reports, invoices and payments. The scope is this repository's: REPORTS_GENERATE,
    # INVOICES_VIEW or INVOICES_PAY, so a row the caller may not use that way is never read or changed.

    def _summary_conditions(self) -> list[ColumnElement[bool]]:
        return [Bill.provider_id == bindparam("provider_id"),
                Bill.service_date >= bindparam("date_from"), Bill.service_date <= bindparam("date_to"),
                self._visible()]

    async def summary_by_status_and_coverage(
        self, provider_id: uuid.UUID, date_from: date, date_to: date
    ) -> list[tuple[BillStatus, Coverage, int, int, int]]:
        """(status, coverage, bills, total cents, balance cents) of the provider's bills with a service date
        in [date_from, date_to]."""
        statement = self._statement("summary_by_status_and_coverage", build=lambda: (
            select(Bill.status, Bill.coverage, func.count(), func.coalesce(func.sum(Bill.total_cents), 0),
                   func.coalesce(func.sum(Bill.balance_cents), 0))
            .where(*self._summary_conditions())
            .group_by(Bill.status, Bill.coverage)
            .order_by(Bill.status, Bill.coverage)
        ))
        rows = await self._run(statement, provider_id=provider_id, date_from=date_from, date_to=date_to)
        return [(status, coverage, int(n), int(total), int(balance)) for status, coverage, n, total, balance in rows]

    async def summary_by_patient(
        self, provider_id: uuid.UUID, date_from: date, date_to: date
    ) -> list[tuple[Patient, int, int, int]]:
        """(patient, bills, total cents, balance cents) per patient, by name: the report's patient lines."""
        statement = self._statement("summary_by_patient", build=lambda: (
            select(Patient, func.count(Bill.id), func.coalesce(func.sum(Bill.total_cents), 0),
                   func.coalesce(func.sum(Bill.balance_cents), 0))
            .join(Bill, Bill.patient_id == Patient.id)
            .where(*self._summary_conditions())
            .group_by(Patient.id)
            .order_by(Patient.last_name, Patient.first_name, Patient.id)
        ))
        rows = await self._run(statement, provider_id=provider_id, date_from=date_from, date_to=date_to)
        return [(patient, int(n), int(total), int(balance)) for patient, n, total, balance in rows]

    async def invoice_page(
        self, provider_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None, *,
        outstanding_only: bool = False,
    ) -> list[tuple[Bill, Patient]]:
        """The provider's invoiced bills (submitted or paid), newest first, limit + 1, with their patients."""
        keyset = after is not None

        def build() -> Select:
            statement = (
                select(Bill, Patient)
                .join(Patient, Patient.id == Bill.patient_id)
                .where(Bill.provider_id == bindparam("provider_id"),
                       Bill.status.in_([BillStatus.submitted, BillStatus.paid]),
                       self._visible(), *_conditions(Bill, (), keyset))
            )
            if outstanding_only:
                statement = statement.where(Bill.balance_cents > 0)
            return statement.order_by(*_newest_first(Bill)).limit(_page_limit())

        statement = self._statement("invoice_page", keyset, outstanding_only, build=build)
        params: dict[str, object] = {"provider_id": provider_id, "page_limit": limit + 1}
        if after is not None:
            params["after_created_at"], params["after_id"] = after
        return [(bill, patient) for bill, patient in (await self._run(statement, **params)).all()]

    async def payments(self, bill_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Payment]]:
        """Payments of bills this scope can see, oldest first (the join repeats the scope)."""
        if not bill_ids:
            return {}
        statement = self._statement("payments", build=lambda: (
            select(Payment)
            .join(Bill, Bill.id == Payment.bill_id)
            .where(Payment.bill_id.in_(bindparam("bill_ids", expanding=True)), self._visible())
            .order_by(Payment.bill_id, Payment.created_at, Payment.id)
        ))
        by_bill: dict[uuid.UUID, list[Payment]] = defaultdict(list)
        for payment in (await self._run(statement, bill_ids=bill_ids)).scalars():
            by_bill[payment.bill_id].append(payment)
        return by_bill

    async def add_payment(self, bill: Bill, payment: Payment) -> bool:
        """Take `payment` off the balance of `bill` (locked by the caller, with this scope): the bill becomes
        `paid` at zero. The update re-checks the scope, that the bill is submitted and that the balance is
        still the one read; False (and nothing written) otherwise."""
        balance = bill.balance_cents - payment.amount_cents
        if payment.bill_id != bill.id or payment.amount_cents <= 0 or balance < 0:
            return False
        status = BillStatus.paid if balance == 0 else BillStatus.submitted
        statement = self._statement("add_payment", build=lambda: (
            update(Bill)
            .where(Bill.id == bindparam("bill_id"), Bill.status == BillStatus.submitted,
                   Bill.balance_cents == bindparam("balance_before"), self._visible())
            .values(balance_cents=bindparam("balance_after"), status=bindparam("status_after"))
            .returning(Bill.updated_at)
            .execution_options(synchronize_session=False)
        ))
        row = (await self._run(statement, bill_id=bill.id, balance_before=bill.balance_cents,
                               balance_after=balance, status_after=status)).first()
        if row is None:
            return False
        set_committed_value(bill, "balance_cents", balance)
        set_committed_value(bill, "status", status)
        set_committed_value(bill, "updated_at", row[0])
        self.session.add(payment)
        await self.session.flush()
        return True

    # Billing automation. The scope is the provider's own (BILLS_SAVE to create, INVOICES_PAY to
    # charge, built by authz for the provider as actor): automation writes bills exactly as the provider would.
    # Every statement re-checks the scope and is limited to the scope's own provider.

    async def create_automated_bills(
        self, company_id: uuid.UUID, date_from: date, date_to: date, *, per_patient: bool, now: datetime
    ) -> list[tuple[uuid.UUID, uuid.UUID, int, datetime]]:
        """Bill the provider's unbilled, non-imported encounters with billable services (a line with a CPT code)
        in [date_from, date_to]: one bill per encounter, or (`per_patient`) one per patient for the period.
        Each encounter is linked to its bill in `automated_encounter` (primary key: billed at most once; a second
        attempt fails the transaction). Bills are issued (`submitted`, balance = total), `source = automation`.
        Returns (bill id, patient id, total cents, created at)."""
        if not await self.permits(self.scope.actor_id, company_id):
            raise PermissionError("this scope may not create bills for that provider")
        group_key = "c.patient_id" if per_patient else "c.id"
        encounter_of_bill = "NULL::uuid" if per_patient else "min(c.id::text)::uuid"
        visit_of_bill = "NULL::uuid" if per_patient else "min(c.visit_id::text)::uuid"
        statement = text(f"""
            WITH cand AS MATERIALIZED (
                SELECT e.id, e.patient_id, e.visit_id, e.service_date,
                       (SELECT sum(l.units * l.fee_cents) FROM encounter_line l
                         WHERE l.encounter_id = e.id AND l.cpt_code IS NOT NULL) AS total
                  FROM encounter e
                 WHERE e.company_id = :company_id AND e.provider_id = :provider_id AND NOT e.imported
                   AND e.service_date BETWEEN :date_from AND :date_to
                   AND EXISTS (SELECT 1 FROM encounter_line l WHERE l.encounter_id = e.id AND l.cpt_code IS NOT NULL)
                   AND NOT EXISTS (SELECT 1 FROM automated_encounter a WHERE a.encounter_id = e.id)
                   AND NOT EXISTS (SELECT 1 FROM bill b WHERE b.encounter_id = e.id)
            ),
            grouped AS MATERIALIZED (
                SELECT gen_random_uuid() AS bill_id, {group_key} AS key, min(c.patient_id::text)::uuid AS patient_id,
                       {encounter_of_bill} AS encounter_id, {visit_of_bill} AS visit_id,
                       max(c.service_date) AS service_date, sum(c.total) AS total
                  FROM cand c GROUP BY {group_key}
            ),
            bills AS (
                INSERT INTO bill (id, company_id, provider_id, patient_id, encounter_id, visit_id, coverage, status,
                                  source, service_date, total_cents, balance_cents, submitted_at, created_at, updated_at)
                SELECT g.bill_id, :company_id, :provider_id, g.patient_id, g.encounter_id, g.visit_id, 'private',
                       'submitted', 'automation', g.service_date, g.total, g.total, :now, :now, :now
                  FROM grouped g
                RETURNING id, patient_id, total_cents, created_at
            ),
            links AS (
                INSERT INTO automated_encounter (encounter_id, bill_id, company_id, created_at)
                SELECT c.id, g.bill_id, :company_id, :now FROM cand c JOIN grouped g ON g.key = {group_key}
            )
            SELECT id, patient_id, total_cents, created_at FROM bills
        """)
        params = {"company_id": company_id, "provider_id": self.scope.actor_id, "date_from": date_from,
                  "date_to": date_to, "now": now}
        rows = [(r[0], r[1], int(r[2]), r[3]) for r in (await self.session.execute(statement, params)).all()]
        if rows:
            await self.session.execute(text("""
                INSERT INTO bill_line (id, bill_id, position, cpt_code, description, units, fee_cents)
                SELECT gen_random_uuid(), a.bill_id,
                       row_number() OVER (PARTITION BY a.bill_id ORDER BY e.service_date, e.id, l.position),
                       l.cpt_code, l.description, l.units, l.fee_cents
                  FROM automated_encounter a
                  JOIN encounter e ON e.id = a.encounter_id
                  JOIN encounter_line l ON l.encounter_id = e.id AND l.cpt_code IS NOT NULL
                 WHERE a.bill_id = ANY(:bill_ids)
            """), {"bill_ids": [r[0] for r in rows]})
        return rows

    async def outstanding_for_patients(self, company_id: uuid.UUID, patient_ids: list[uuid.UUID]) -> list[Bill]:
        """The scope's provider's issued bills with a balance for these patients, locked (oldest first).
        The provider's open bills are listed first and kept by patient here, then only those are locked, by
        id: a list of many patients in the SQL is matched row by row under a generic plan (about a second a
        provider at 22,000 patients)."""
        wanted = set(patient_ids)
        if not wanted:
            return []
        candidates = self._statement("outstanding_candidates", build=lambda: (
            select(Bill.id, Bill.patient_id)
            .where(Bill.company_id == bindparam("company_id"), Bill.provider_id == bindparam("provider_id"),
                   Bill.status == BillStatus.submitted, Bill.balance_cents > 0, self._visible())
        ))
        bill_ids = [bill_id for bill_id, patient_id in (await self._run(
            candidates, company_id=company_id, provider_id=self.scope.actor_id)).all() if patient_id in wanted]
        if not bill_ids:
            return []
        # Locked, the conditions are checked again: the rows are the ones as they stand now.
        statement = self._statement("outstanding_locked", build=lambda: (
            select(Bill)
            .where(Bill.id == any_(bindparam("bill_ids", type_=ARRAY(UUID(as_uuid=True)))),
                   Bill.provider_id == bindparam("provider_id"), Bill.status == BillStatus.submitted,
                   Bill.balance_cents > 0, self._visible())
            .order_by(Bill.created_at, Bill.id)
            .with_for_update(of=Bill)
        ))
        return list((await self._run(statement, bill_ids=bill_ids, provider_id=self.scope.actor_id)).scalars())

    async def open_bills_through(self, company_id: uuid.UUID, service_date_to: date) -> list[tuple]:
        """The scope's provider's issued bills with a balance for services up to `service_date_to`, for
        statements: (bill id, patient id, provider id, service date, total cents, balance cents)."""
        statement = self._statement("open_bills_through", build=lambda: (
            select(Bill.id, Bill.patient_id, Bill.provider_id, Bill.service_date, Bill.total_cents,
                   Bill.balance_cents)
            .where(Bill.company_id == bindparam("company_id"), Bill.provider_id == bindparam("provider_id"),
                   Bill.status == BillStatus.submitted, Bill.balance_cents > 0,
                   Bill.service_date <= bindparam("service_date_to"), self._visible())
            .order_by(Bill.patient_id, Bill.service_date, Bill.id)
        ))
        return [tuple(r) for r in (await self._run(statement, company_id=company_id, provider_id=self.scope.actor_id,
                                                   service_date_to=service_date_to)).all()]

    async def add_payments(self, paid: list[tuple[Bill, Payment]]) -> set[uuid.UUID]:
        """`add_payment` for many bills in two statements (AutoPay): each bill (locked by the caller, with this
        scope) is updated only if it is still submitted with the balance read; the payments of the bills
        updated are inserted. Returns the ids of the bills paid; the others are left untouched."""
        rows = [(bill, payment, bill.balance_cents - payment.amount_cents) for bill, payment in paid
                if payment.bill_id == bill.id and 0 < payment.amount_cents <= bill.balance_cents]
        if not rows:
            return set()
        statement = self._statement("add_payments", build=self._add_payments_statement)
        updated = dict((await self._run(statement, bill_ids=[r[0].id for r in rows],
                                        before=[r[0].balance_cents for r in rows],
                                        after=[r[2] for r in rows])).all())
        payments = []
        for bill, payment, balance in rows:
            if bill.id in updated:
                set_committed_value(bill, "balance_cents", balance)
                set_committed_value(bill, "status", BillStatus.paid if balance == 0 else BillStatus.submitted)
                set_committed_value(bill, "updated_at", updated[bill.id])
                payments.append(payment)
        self.session.add_all(payments)
        await self.session.flush()
        return set(updated)

    def _add_payments_statement(self) -> Executable:
        paid = func.unnest(
            bindparam("bill_ids", type_=ARRAY(UUID(as_uuid=True))), bindparam("before", type_=ARRAY(Integer)),
            bindparam("after", type_=ARRAY(Integer)),
        ).table_valued(column("bill_id", UUID(as_uuid=True)), column("balance_before", Integer),
                       column("balance_after", Integer)).render_derived(name="paid")
        status = cast(case((paid.c.balance_after == 0, literal(BillStatus.paid.value)),
                           else_=literal(BillStatus.submitted.value)), Bill.__table__.c.status.type)
        return (
            update(Bill)
            .where(Bill.id == paid.c.bill_id, Bill.status == BillStatus.submitted,
                   Bill.balance_cents == paid.c.balance_before, self._visible())
            .values(balance_cents=paid.c.balance_after, status=status)
            .returning(Bill.id, Bill.updated_at)
            .execution_options(synchronize_session=False)
        )

    async def providers_of_patient(self, patient_id: uuid.UUID) -> list[uuid.UUID]:
        """The providers whose billing data a patient's documents and settings are: those who bill the patient
        (bills this scope sees) or treat them (encounters). For auditing support's reads."""
        statement = self._statement("providers_of_patient", build=lambda: union(
            select(Bill.provider_id).where(Bill.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True)),
                                           self._visible()),
            select(Encounter.provider_id).where(
                Encounter.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True))),
        ).order_by("provider_id"))
        return list((await self._run(statement, patient_id=patient_id)).scalars())

    async def sources_for_patient(self, patient_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(provider_id, company_id) of the patient's bills this scope sees (for the access log)."""
        statement = self._statement("sources_for_patient", build=lambda: (
            select(Bill.provider_id, Bill.company_id)
            .where(Bill.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True)), self._visible())
            .distinct()
        ))
        return [(p, c) for p, c in (await self._run(statement, patient_id=patient_id)).all()]

    async def sees_patient(self, patient_id: uuid.UUID, company_id: uuid.UUID) -> bool:
        """May this scope see the bill data of this patient: support (view), company-wide access to the
        patient's company, or a granted provider who bills or treats the patient."""
        statement = self._statement("sees_patient", build=lambda: select(or_(
            self.scope.sees_all(),
            bindparam("company_id", type_=UUID(as_uuid=True)).in_(self.scope.companies()),
            exists().where(Bill.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True)),
                           Bill.provider_id.in_(self.scope.providers())),
            exists().where(Encounter.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True)),
                           Encounter.provider_id.in_(self.scope.providers())),
        )))
        return bool((await self._run(statement, company_id=company_id, patient_id=patient_id)).scalar_one())
