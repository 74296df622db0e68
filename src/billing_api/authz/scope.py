"""BillScope: the filter every bill query must take, compiled into the SQL of the query itself."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, Select, or_

from billing_api.authz import rules
from billing_api.authz.permissions import Permission

_KEY = object()


class BillScope:
    """Which bills one actor may use one permission on. Only `bill_scope` (this module) makes one,
    and the bill repository cannot be built without one."""

    __slots__ = ("actor_id", "permission", "is_support")

    def __init__(self, key: object, actor_id: uuid.UUID, permission: Permission, is_support: bool) -> None:
        if key is not _KEY:
            raise TypeError("BillScope is built by billing_api.authz.scope.bill_scope only")
        self.actor_id = actor_id
        self.permission = permission
        # Support reads are audited (rule 2).
        self.is_support = is_support

    def sees_all(self) -> ColumnElement[bool]:
        return rules.support_sees_all(self.actor_id, self.permission)

    def providers(self) -> Select[tuple[uuid.UUID]]:
        """Providers granted through rules 4 and 5 (column `provider_id`)."""
        return rules.granted_providers(self.actor_id, self.permission)

    def companies(self) -> Select[tuple[uuid.UUID]]:
        """Companies granted whole through rule 6 (column `company_id`)."""
        return rules.company_wide_companies(self.actor_id, self.permission)

    def allows(
        self, provider_id: ColumnElement[uuid.UUID], company_id: ColumnElement[uuid.UUID]
    ) -> ColumnElement[bool]:
        """The predicate for a bill with these columns: evaluated by PostgreSQL, row by row."""
        return or_(
            self.sees_all(),
            provider_id.in_(self.providers()),
            company_id.in_(self.companies()),
        )

    def narrowed_to(self, permission: Permission) -> BillScope:
        """The same actor, another permission (for example: may they also submit what they see)."""
        return BillScope(_KEY, self.actor_id, permission, self.is_support)


def bill_scope(actor_id: uuid.UUID, permission: Permission, *, is_support: bool) -> BillScope:
    return BillScope(_KEY, actor_id, permission, is_support)
