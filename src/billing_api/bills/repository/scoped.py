"""The base of every bill repository: built only with a BillScope, whose SQL each statement carries.

Statements are built once per shape (repository, permission, support or not, filters in use, ...) and reused with
new parameters, the actor among them: building these statements costs more than PostgreSQL spends running them.
A scope's SQL depends only on its permission and kind, so a shape's statement serves every actor.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import ColumnElement, Executable, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz.rules import may_on_provider
from billing_api.authz.scope import BillScope
from billing_api.models import Bill

_statements: dict[tuple, Executable] = {}


class ScopedRepository:
    def __init__(self, session: AsyncSession, scope: BillScope) -> None:
        if not isinstance(scope, BillScope):
            raise TypeError(f"a {type(self).__name__} needs the BillScope of the request")
        self.session = session
        self.scope = scope

    def _visible(self, table=Bill) -> ColumnElement[bool]:
        return self.scope.allows(table.provider_id, table.company_id)

    def _statement(self, *shape: object, build: Callable[[], Executable]) -> Executable:
        key = (type(self), self.scope.permission, self.scope.is_support, *shape)
        statement = _statements.get(key)
        if statement is None:
            statement = _statements[key] = build()
        return statement

    async def _run(self, statement: Executable, **params: object):
        return await self.session.execute(statement, {**self.scope.params, **params})

    async def permits(self, provider_id: uuid.UUID, company_id: uuid.UUID) -> bool:
        """May this scope use its permission on bills of `provider_id` kept in `company_id` (one decision, as
        `authorize()` makes it: before creating a bill, or before showing what one will charge)."""
        statement = select(may_on_provider(self.scope.actor_id, self.scope.permission, provider_id, company_id))
        return bool((await self.session.execute(statement)).scalar_one())
