"""Structural guarantees: every bill route is guarded, and bill SQL lives in one module; company reach is a
CompanyScope that only authz builds, taken by every route and repository that lists companies' records."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import APIRoute

from billing_api.app import create_app
from billing_api.authz.dependencies import BillAccess
from billing_api.authz.scope import BillScope, bill_scope
from billing_api.authz.permissions import Permission
from tests.authz.route_matrix import app_routes

SRC = Path(__file__).resolve().parents[2] / "src" / "billing_api"
BILL_REPOSITORY = SRC / "bills" / "repository"
# Paths that serve bill data (or data derived from bills) whatever their code looks like.
BILL_PATHS = re.compile(r"/bills|/invoices|/reports|/payments|/billing-segregation|/documents")


def _routes(app) -> list[APIRoute]:
    """Every APIRoute, through FastAPI's included-router wrappers."""
    return [route for _, route in app_routes(app) if isinstance(route, APIRoute)]


def _guards(dependant) -> list[BillAccess]:
    guards = [d.call for d in dependant.dependencies if isinstance(d.call, BillAccess)]
    for sub in dependant.dependencies:
        guards += _guards(sub)
    return guards


def _source(route: APIRoute) -> str:
    import inspect

    return inspect.getsource(route.endpoint)


def test_the_route_walk_finds_the_bill_surfaces():
    paths = {(tuple(sorted(r.methods)), r.path) for r in _routes(create_app())}
    for path in ("/v1/bills", "/v1/bills/{bill_id}", "/v1/encounters/{encounter_id}/bills",
                 "/v1/patients/{patient_id}/bills", "/v1/visits"):
        assert any(p == path for _, p in paths), path


def test_every_route_that_touches_bills_has_the_guard():
    app = create_app()
    bill_routes = [r for r in _routes(app) if BILL_PATHS.search(r.path) or "BillRepository" in _source(r)]
    unguarded = [f"{sorted(r.methods)} {r.path}" for r in bill_routes if not _guards(r.dependant)]
    assert bill_routes, "the walk found no bill routes"
    assert not unguarded, f"bill routes without the BillAccess guard: {unguarded}"


def test_routes_without_the_guard_never_build_a_bill_repository():
    for route in _routes(create_app()):
        if not _guards(route.dependant):
            assert "BillRepository" not in _source(route), route.path


def test_bill_queries_are_written_only_in_the_bill_repository():
    # Core statements on the bill tables, and raw SQL naming them.
    core = re.compile(r"\b(select|update|delete|insert)\(\s*(Bill|BillLine)\b|\b(Bill|BillLine)\.__table__")
    raw = re.compile(r"\b(from|into|update|join)\s+(bill|bill_line)\b", re.IGNORECASE)
    repository = set(BILL_REPOSITORY.glob("*.py"))
    offenders = [
        str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
        if path not in repository and (core.search(path.read_text()) or raw.search(path.read_text()))
    ]
    assert not offenders, f"bill SQL outside bills/repository/: {offenders}"
    assert any(core.search(path.read_text()) for path in repository)


def test_the_bill_repository_writes_no_raw_sql():
    """Every statement is built with SQLAlchemy from the scope's SQL; raw text stays a literal or a catalog name."""
    allowed = {"'[]'::json", "pg_class", "oid = 'bill'::regclass"}
    raw = re.compile(r"\btext\(\s*(f?)(\"\"\"|\"|')(.*?)\2\s*\)", re.DOTALL)
    found = [(path.name, match.group(3)) for path in BILL_REPOSITORY.glob("*.py")
             for match in raw.finditer(path.read_text())]
    assert found, "the check sees the repository's text() calls"
    assert [(name, sql) for name, sql in found if sql not in allowed] == []


def test_a_bill_scope_cannot_be_made_outside_authz():
    import pytest

    with pytest.raises(TypeError):
        BillScope(object(), None, Permission.BILLS_VIEW, False)
    scope = bill_scope(__import__("uuid").uuid4(), Permission.BILLS_VIEW, is_support=False)
    assert isinstance(scope, BillScope)


def test_the_bill_repository_needs_a_scope():
    import pytest

    from billing_api.bills import repository
    from billing_api.bills.repository.scoped import ScopedRepository

    classes = [getattr(repository, name) for name in repository.__all__ if name != "BillFilters"]
    assert len(classes) == 4 and all(issubclass(cls, ScopedRepository) for cls in classes)
    for cls in classes:
        with pytest.raises(TypeError):
            cls(None, None)
    public = [name for name in vars(repository.BillRepository) if not name.startswith("_")]
    # Every read and write goes through the scope: none of them takes a way around it.
    assert "page" in public and "get" in public


# Company reach: the same treatment as bills, through a CompanyScope.

AUTHZ = SRC / "authz"
SCOPE_LISTS = re.compile(r"\b(list_users|list_groups|list_patients|list_visits|list_companies)\(")


def _outside_authz() -> list[Path]:
    return [path for path in SRC.rglob("*.py") if AUTHZ not in path.parents]


def test_a_company_scope_cannot_be_made_outside_authz():
    import pytest

    from billing_api.authz.scope import CompanyScope, company_scope

    with pytest.raises(TypeError):
        CompanyScope(object(), None)
    assert company_scope(None).sees_all and not company_scope([]).reaches(__import__("uuid").uuid4())
    builds = re.compile(r"\b(CompanyScope|company_scope)\(")
    offenders = [str(path.relative_to(SRC)) for path in _outside_authz() if builds.search(path.read_text())]
    assert not offenders, f"CompanyScope built outside authz: {offenders}"


def test_a_company_scope_only_narrows():
    import uuid

    from billing_api.authz.scope import company_scope

    north, west = uuid.uuid4(), uuid.uuid4()
    assert company_scope(None).within(north).company_ids == {north}
    assert company_scope([north]).within(north).company_ids == {north}
    assert company_scope([north]).within(west).company_ids == frozenset()


def test_only_authz_decides_that_support_sees_every_company():
    pattern = re.compile(r"is_support\s+else")
    offenders = [str(path.relative_to(SRC)) for path in _outside_authz() if pattern.search(path.read_text())]
    assert not offenders, f"support's reach decided outside authz: {offenders}"


def test_lists_of_companies_records_take_a_company_scope():
    import importlib
    import inspect

    listing = []
    for path in SRC.rglob("repository.py"):
        module = importlib.import_module("billing_api." + ".".join(path.relative_to(SRC).with_suffix("").parts))
        for name, function in inspect.getmembers(module, inspect.iscoroutinefunction):
            if function.__module__ != module.__name__:
                continue
            if SCOPE_LISTS.search(f"{name}("):
                listing.append(name)
                reach = inspect.signature(function).parameters.get("reach")
                assert reach is not None and "CompanyScope" in str(reach.annotation), f"{module.__name__}.{name}"
    assert set(listing) == {"list_users", "list_groups", "list_patients", "list_visits", "list_companies"}


def _reach_guarded(dependant) -> bool:
    from billing_api.authz.dependencies import company_reach

    return any(d.call is company_reach or _reach_guarded(d) for d in dependant.dependencies)


def test_every_route_listing_companies_records_takes_the_callers_reach():
    listing = [r for r in _routes(create_app()) if SCOPE_LISTS.search(_source(r))]
    assert listing, "the walk found no routes listing companies' records"
    unguarded = [f"{sorted(r.methods)} {r.path}" for r in listing if not _reach_guarded(r.dependant)]
    assert not unguarded, f"routes listing companies' records without CompanyReach: {unguarded}"
