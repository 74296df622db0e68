"""Typed dependencies that hand routes an authorization-aware view of the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.actor import Actor, load_actor
from billing_api.authz.permissions import Permission
from billing_api.authz.scope import BillScope, CompanyScope, bill_scope
from billing_api.db import Session
from billing_api.models import AccountType


async def current_actor(session: Session, principal: CurrentPrincipal) -> Actor:
    return await load_actor(session, principal.user)


CurrentActor = Annotated[Actor, Depends(current_actor)]


async def company_reach(actor: CurrentActor) -> CompanyScope:
    # The actor's own scope: FastAPI resolves CurrentActor once per request, so this reads nothing more.
    return actor.reach


# The guard of every route that lists companies' records: hands the route the caller's CompanyScope.
CompanyReach = Annotated[CompanyScope, Depends(company_reach)]


class BillAccess:
    """The guard of every route that reads or writes bills: hands the route the caller's BillScope."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, principal: CurrentPrincipal) -> BillScope:
        return bill_scope(
            principal.id, self.permission, is_support=principal.user.account_type == AccountType.support
        )


BillsView = Annotated[BillScope, Depends(BillAccess(Permission.BILLS_VIEW))]
BillsSave = Annotated[BillScope, Depends(BillAccess(Permission.BILLS_SAVE))]
BillsSubmit = Annotated[BillScope, Depends(BillAccess(Permission.BILLS_SUBMIT))]
BillsDelete = Annotated[BillScope, Depends(BillAccess(Permission.BILLS_DELETE))]
ReportsGenerate = Annotated[BillScope, Depends(BillAccess(Permission.REPORTS_GENERATE))]
InvoicesView = Annotated[BillScope, Depends(BillAccess(Permission.INVOICES_VIEW))]
InvoicesPay = Annotated[BillScope, Depends(BillAccess(Permission.INVOICES_PAY))]
