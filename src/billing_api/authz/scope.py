"""The scopes repositories filter by, built here only.

BillScope: the filter every bill query must take, compiled into the SQL of the query itself. The SQL names the
actor through one bound parameter, so each permission's SQL is built once per process and every request only
binds its actor (building these statements costs more than running them).

CompanyScope: the companies whose records (users, groups, patients, visits, the companies themselves) a list
may show: the companies the actor reaches (rule 3), or every company (support).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import InitVar, dataclass
from functools import lru_cache
from typing import TypeVar

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, or_
from sqlalchemy.dialects.postgresql import UUID

from billing_api.authz import rules
from billing_api.authz.permissions import Permission

_KEY = object()
ACTOR = "scope_actor_id"


def _actor() -> BindParameter[uuid.UUID]:
    return bindparam(ACTOR, type_=UUID(as_uuid=True))


@lru_cache
def _sees_all(permission: Permission) -> ColumnElement[bool]:
    return rules.support_sees_all(_actor(), permission)


@lru_cache
def _providers(permission: Permission) -> Select[tuple[uuid.UUID]]:
    return rules.granted_providers(_actor(), permission)


@lru_cache
def _companies(permission: Permission) -> Select[tuple[uuid.UUID]]:
    return rules.company_wide_companies(_actor(), permission)


class BillScope:
    """Which bills one actor may use one permission on. Only `bill_scope` (this module) makes one,
    and the bill repository cannot be built without one. Statements using its SQL are executed with
    `params` (the actor)."""

    __slots__ = ("actor_id", "permission", "is_support")

    def __init__(self, key: object, actor_id: uuid.UUID, permission: Permission, is_support: bool) -> None:
        if key is not _KEY:
            raise TypeError("BillScope is built by billing_api.authz.scope.bill_scope only")
        self.actor_id = actor_id
        self.permission = permission
        # Support reads are audited (rule 2); support statements take the rule-2 shape only.
        self.is_support = is_support

    @property
    def params(self) -> dict[str, uuid.UUID]:
        return {ACTOR: self.actor_id}

    def sees_all(self) -> ColumnElement[bool]:
        return _sees_all(self.permission)

    def providers(self) -> Select[tuple[uuid.UUID]]:
        """Providers granted through rules 4 and 5 (column `provider_id`)."""
        return _providers(self.permission)

    def companies(self) -> Select[tuple[uuid.UUID]]:
        """Companies granted whole through rule 6 (column `company_id`)."""
        return _companies(self.permission)

    def allows(
        self, provider_id: ColumnElement[uuid.UUID], company_id: ColumnElement[uuid.UUID]
    ) -> ColumnElement[bool]:
        """The predicate for a bill with these columns: evaluated by PostgreSQL, row by row."""
        return or_(self.sees_all(), provider_id.in_(self.providers()), company_id.in_(self.companies()))


def bill_scope(actor_id: uuid.UUID, permission: Permission, *, is_support: bool) -> BillScope:
    return BillScope(_KEY, actor_id, permission, is_support)


_S = TypeVar("_S", bound=Select)


@dataclass(frozen=True)
class CompanyScope:
    """The companies whose records one actor may list. Only `company_scope` (this module) makes one (the actor's,
    in `authz.actor`), and the repositories that list companies' records take one instead of company ids."""

    key: InitVar[object]
    # None: every company (support's read-only oversight).
    company_ids: frozenset[uuid.UUID] | None

    def __post_init__(self, key: object) -> None:
        if key is not _KEY:
            raise TypeError("CompanyScope is built by billing_api.authz.scope.company_scope only")

    @property
    def sees_all(self) -> bool:
        return self.company_ids is None

    def reaches(self, company_id: uuid.UUID) -> bool:
        return self.company_ids is None or company_id in self.company_ids

    def within(self, company_id: uuid.UUID) -> CompanyScope:
        """Narrowed to one company (a `company_id` filter, the active company): empty if it is not in the scope.
        Only ever narrower: no scope is widened outside this module."""
        return CompanyScope(_KEY, frozenset({company_id}) if self.reaches(company_id) else frozenset())

    def filter(self, statement: _S, company_id: ColumnElement[uuid.UUID]) -> _S:
        """`statement` keeping only rows whose `company_id` is in the scope (unchanged when it spans every
        company, so support's statements carry no filter at all)."""
        if self.company_ids is None:
            return statement
        # Sorted: the same scope always binds its ids in the same order.
        return statement.where(company_id.in_(sorted(self.company_ids)))


def company_scope(company_ids: Iterable[uuid.UUID] | None) -> CompanyScope:
    """None: every company."""
    return CompanyScope(_KEY, None if company_ids is None else frozenset(company_ids))
