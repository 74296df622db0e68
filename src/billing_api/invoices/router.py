"""HTTP for billing reports, invoices and payments. Each route takes its BillScope from a BillAccess guard."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from billing_api.access_log.service import AccessLog
from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.dependencies import BillsView, InvoicesPay, InvoicesView, ReportsGenerate
from billing_api.db import Session
from billing_api.errors import problem_responses
from billing_api.idempotency.service import Idempotent, IdempotentRoute
from billing_api.invoices import service
from billing_api.invoices.schemas import BillingSummary, InvoicePage, PaymentCreate, PaymentResult
from billing_api.pagination import Paging, next_cursor
from billing_api.schemas import Day

READ_ERRORS = problem_responses(401, 403, 404, 422)
PAY_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)

router = APIRouter(prefix="/v1", route_class=IdempotentRoute)


@router.get("/providers/{provider_id}/reports/billing-summary", response_model=BillingSummary,
            tags=["reports"], responses=READ_ERRORS)
async def get_billing_summary(
    provider_id: uuid.UUID,
    session: Session,
    log: AccessLog,
    view: BillsView,
    reports: ReportsGenerate,
    date_from: Annotated[Day, Query(alias="from", description="First service date (inclusive).")],
    date_to: Annotated[Day, Query(alias="to", description="Last service date (inclusive).")],
) -> BillingSummary:
    """Totals of the provider's bills with a service date in the period, by status, coverage and payer, and per
    patient (`reports:generate`). **The report shows patient names and dates of birth.**"""
    return await service.billing_summary(session, log, view, reports, provider_id, date_from, date_to)


@router.get("/providers/{provider_id}/invoices", response_model=InvoicePage, tags=["invoices"],
            responses=READ_ERRORS)
async def list_invoices(
    provider_id: uuid.UUID,
    session: Session,
    log: AccessLog,
    view: BillsView,
    invoices: InvoicesView,
    paging: Paging,
    outstanding: Annotated[bool, Query(description="Only invoices with a balance left.")] = False,
    payer_id: Annotated[uuid.UUID | None, Query(description="Only invoices sent to this payer.")] = None,
) -> InvoicePage:
    """What is owed on the provider's submitted bills, newest first: each with its total, payments and balance,
    and who owes it (`invoices:view`)."""
    items, bills = await service.invoice_page(session, log, view, invoices, provider_id, paging.limit,
                                              paging.after, outstanding, payer_id)
    return InvoicePage(items=items, next_cursor=next_cursor(bills, paging.limit))


@router.post("/bills/{bill_id}/payments",
             dependencies=[Idempotent], response_model=PaymentResult, status_code=status.HTTP_201_CREATED,
             tags=["invoices"], responses=PAY_ERRORS)
async def record_payment(bill_id: uuid.UUID, data: PaymentCreate, session: Session, principal: CurrentPrincipal,
                         view: BillsView, pay: InvoicesPay) -> PaymentResult:
    """Record a payment on a submitted bill (`invoices:pay`): the balance goes down by the amount, and the bill
    is `paid` at zero. The amount is more than 0 and at most the balance."""
    return await service.record_payment(session, principal, view, pay, bill_id, data)
