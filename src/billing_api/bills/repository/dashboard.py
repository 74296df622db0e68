"""The dashboard's statements: a page of the bills a scope sees, newest first, with its filters and keyset.

The statement picks its access path at run time (see `_mode` and docs/decisions/0009-dashboard-access-path.md), so
one generic plan serves every caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    ColumnElement, DateTime, Integer, Select, bindparam, case, func, literal_column, or_, select, text, true, tuple_,
    union, union_all,
)
from sqlalchemy.dialects.postgresql import UUID, aggregate_order_by
from sqlalchemy.orm import aliased

from billing_api.authz.scope import BillScope
from billing_api.models import CPT_CODE_SYSTEMS, Bill, BillLine, BillStatus, Coverage, ProviderBillCount

# The dashboard's choice of access path (see _mode); measured with bench/run.py.
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


def conditions(table, used: tuple[str, ...], keyset: bool) -> list[ColumnElement[bool]]:
    conditions = [_FILTER_TESTS[name](table) for name in used]
    if keyset:
        after = tuple_(bindparam("after_created_at", type_=DateTime(timezone=True)),
                       bindparam("after_id", type_=UUID(as_uuid=True)))
        conditions.append(tuple_(table.created_at, table.id) < after)
    return conditions


def page_limit():
    return bindparam("page_limit", type_=Integer)


def page_params(filters: BillFilters, limit: int, after: tuple[datetime, uuid.UUID] | None) -> dict:
    params: dict[str, object] = {f"filter_{name}": value for name, value in filters.values().items()}
    params["page_limit"] = limit
    if after is not None:
        params["after_created_at"], params["after_id"] = after
    return params


def newest_first(table) -> tuple:
    return table.created_at.desc(), table.id.desc()


def _shown_as_cpt_code() -> ColumnElement[bool]:
    # Literals, not a bound list: the statement is compiled once for `db.fetch`, which binds no expanding lists.
    return or_(*(BillLine.code_system == literal_column(f"'{system.value}'") for system in sorted(CPT_CODE_SYSTEMS)))


def lines_json() -> ColumnElement[str]:
    """The bill's lines as a JSON array in position order, built by PostgreSQL in the bill's own row: one
    statement for the page and its lines, and no second look at the scope (each bill of the page is visible)."""
    line = func.json_build_object(  # json, not jsonb: it keeps these keys in the order the API shows them
        "code_system", BillLine.code_system, "code", BillLine.code, "modifiers", BillLine.modifiers,
        "diagnosis_pointers", BillLine.diagnosis_pointers, "description", BillLine.description,
        "units", BillLine.units, "fee_cents", BillLine.fee_cents,
        "cpt_code", case((_shown_as_cpt_code(), BillLine.code)),
    )
    return (
        select(func.coalesce(func.json_agg(aggregate_order_by(line, BillLine.position)), text("'[]'::json")))
        .where(BillLine.bill_id == Bill.id)
        .scalar_subquery()
        .label("lines")
    )


_COMPUTED = {"lines": lines_json}


def page_select(presented: bool) -> Select:
    """A page's bills as ORM entities, or as rows of what the API shows of each bill (`BILL_FIELDS`). The
    diagnoses are the stored jsonb, whose keys are not in the API's order: `bills.service.presented_items` puts
    them in it. (Rebuilt here by a subquery over the column, even one never run for bills without diagnoses,
    they made the page's statement take 66 ms instead of 1 ms at a million bills under the generic plan.)"""
    if not presented:
        return select(Bill)
    return select(*(_COMPUTED[name]() if name in _COMPUTED else getattr(Bill, name) for name in BILL_FIELDS))


# What the API shows of a bill, in its order (BillRead's fields).
BILL_FIELDS = ("id", "company_id", "provider_id", "patient_id", "encounter_id", "visit_id", "coverage", "payer_id",
               "status", "source", "service_date", "total_cents", "balance_cents", "diagnoses", "lines", "created_at",
               "updated_at", "submitted_at")


def dashboard_statement(scope: BillScope, used: tuple[str, ...], keyset: bool, presented: bool = False) -> Select:
    """One statement (docs/performance.md, "The dashboard statement"). Support (rule 2) walks the newest-first
    index behind an in-statement check. Everyone else has the scope computed in CTEs, then one of two branches
    runs, chosen in the statement from the exact bill counts of what the scope covers:
    `narrow` takes the newest keys of each visible provider and company from their own indexes and
    merges them; `wide` walks the newest-first (covering) index keeping visible rows. `presented`: the rows
    the API shows (BILL_FIELDS), not ORM entities."""
    limit = page_limit()
    filtered = conditions(Bill, used, keyset)
    if scope.is_support:
        return (page_select(presented).where(scope.sees_all(), *filtered).order_by(*newest_first(Bill))
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
            *filtered,
        )
        .order_by(*newest_first(Bill))
        .limit(limit)
    )

    def newest_of(column_name: str, sources, source_column, name: str):
        table = aliased(Bill, name=f"{name}_bill")
        return (
            select(table.id, table.created_at)
            .where(getattr(table, column_name) == source_column, *conditions(table, used, keyset))
            .order_by(*newest_first(table))
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
    return page_select(presented).where(Bill.id.in_(select(keys.c.id))).order_by(*newest_first(Bill))


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


