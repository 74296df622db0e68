"""HTTP for billing automation: settings at two levels, cards, effective settings, documents, runs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from billing_api.access_log.service import AccessLog
from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.dependencies import BillsSave, BillsView, CurrentActor
from billing_api.automation import service
from billing_api.automation.schemas import (
    ApplyDefaultsResult,
    CompanyAutomationRead,
    CompanyAutomationUpdate,
    DocumentCreate,
    DocumentPage,
    DocumentRead,
    EffectiveSettingsRead,
    PatientSettingsRead,
    PatientSettingsUpdate,
    PaymentMethodCreate,
    PaymentMethodRead,
    RunPage,
    RunRead,
    RunRequest,
    RunResponse,
    RunResult,
)
from billing_api.db import Session
from billing_api.deps import AppSettings
from billing_api.errors import problem_responses
from billing_api.idempotency.service import Idempotent, IdempotentRoute
from billing_api.pagination import Paging, next_cursor

READ_ERRORS = problem_responses(401, 403, 404, 422)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)

router = APIRouter(prefix="/v1", route_class=IdempotentRoute, tags=["billing automation"])


@router.get("/companies/{company_id}/billing-automation", response_model=CompanyAutomationRead,
            responses=READ_ERRORS)
async def get_company_billing_automation(company_id: uuid.UUID, session: Session,
                                         actor: CurrentActor) -> CompanyAutomationRead:
    """Account-level settings (defaults when never saved). Company admins, billing:automation_manage holders
    who reach the company, and support (read-only)."""
    return await service.get_company_settings(session, actor, company_id)


@router.put("/companies/{company_id}/billing-automation", response_model=CompanyAutomationRead,
            responses=WRITE_ERRORS)
async def put_company_billing_automation(company_id: uuid.UUID, data: CompanyAutomationUpdate, session: Session,
                                         principal: CurrentPrincipal, actor: CurrentActor) -> CompanyAutomationRead:
    """Replace the account-level settings. Sharing defaults apply to patients created afterwards only; a delay
    under 60 minutes with AutoPay and automatic bills is accepted with a warning."""
    return await service.put_company_settings(session, principal, actor, company_id, data)


@router.post("/companies/{company_id}/billing-automation/apply-defaults", response_model=ApplyDefaultsResult,
             responses=WRITE_ERRORS)
async def apply_billing_automation_defaults(company_id: uuid.UUID, session: Session, principal: CurrentPrincipal,
                                            actor: CurrentActor) -> ApplyDefaultsResult:
    """The explicit bulk action: write the company's current sharing defaults to every existing patient."""
    return ApplyDefaultsResult(patients_updated=await service.apply_defaults(session, principal, actor, company_id))


@router.post("/companies/{company_id}/billing-automation/runs",
             dependencies=[Idempotent], response_model=RunResponse, responses=WRITE_ERRORS)
async def run_billing_automation(company_id: uuid.UUID, data: RunRequest, session: Session,
                                 principal: CurrentPrincipal, actor: CurrentActor,
                                 settings: AppSettings) -> RunResponse:
    """Run a night's stages now (bills, then AutoPay, then superbills on the superbill day and statements on the
    1st), through the scheduler's code. AutoPay brings bill creation along and statements bring AutoPay. A stage
    that already ran for that date reports `already_run`. Documents due for sharing are shared too."""
    results, shared = await service.run_night(session, principal, actor, settings, company_id, data.date, data.stages)
    return RunResponse(local_date=data.date, documents_shared=shared, results=[
        RunResult(stage=stage, outcome=outcome, run=RunRead.model_validate(run)) for stage, outcome, run in results])


@router.get("/companies/{company_id}/billing-automation/runs", response_model=RunPage, responses=READ_ERRORS)
async def list_billing_automation_runs(company_id: uuid.UUID, session: Session, actor: CurrentActor,
                                       paging: Paging) -> RunPage:
    """Past runs, newest first, with their counts and errors."""
    rows = await service.list_runs(session, actor, company_id, paging.limit, paging.after)
    return RunPage(items=[RunRead.model_validate(r) for r in rows[: paging.limit]],
                   next_cursor=next_cursor(rows, paging.limit))


@router.get("/patients/{patient_id}/billing-settings", response_model=PatientSettingsRead, responses=READ_ERRORS)
async def get_patient_billing_settings(patient_id: uuid.UUID, session: Session,
                                       actor: CurrentActor, scope: BillsView, log: AccessLog) -> PatientSettingsRead:
    """The patient's own settings (what actually happens for them), with `warnings` like the company's (a bill
    delay under 60 minutes while automatic bills and AutoPay are on for this patient)."""
    return await service.get_patient_settings(session, actor, scope, log, patient_id)


@router.patch("/patients/{patient_id}/billing-settings", response_model=PatientSettingsRead, responses=WRITE_ERRORS)
async def patch_patient_billing_settings(patient_id: uuid.UUID, data: PatientSettingsUpdate, session: Session,
                                         principal: CurrentPrincipal, actor: CurrentActor,
                                         scope: BillsSave) -> PatientSettingsRead:
    """Change some of the patient's settings, including the billing contact (`null` removes it; other fields
    may be left out but not set to null: 422 `field_required`). A bill delay under 60 minutes while automatic
    bills and AutoPay are on for this patient is accepted with a warning."""
    return await service.patch_patient_settings(session, principal, actor, scope, patient_id, data)


@router.get("/patients/{patient_id}/billing-settings/effective", response_model=EffectiveSettingsRead,
            responses=READ_ERRORS)
async def get_effective_billing_settings(patient_id: uuid.UUID, session: Session, actor: CurrentActor,
                                         scope: BillsView, log: AccessLog) -> EffectiveSettingsRead:
    """For each automation: will it run for this patient, and every reason why not."""
    return await service.effective(session, actor, scope, log, patient_id)


@router.get("/patients/{patient_id}/payment-methods", response_model=list[PaymentMethodRead], responses=READ_ERRORS)
async def list_payment_methods(patient_id: uuid.UUID, session: Session,
                               actor: CurrentActor, scope: BillsView, log: AccessLog) -> list[PaymentMethodRead]:
    """Cards on file (never the number or the token)."""
    return await service.list_cards(session, actor, scope, log, patient_id)


@router.post("/patients/{patient_id}/payment-methods", dependencies=[Idempotent], response_model=PaymentMethodRead,
             status_code=status.HTTP_201_CREATED, responses=WRITE_ERRORS)
async def add_payment_method(patient_id: uuid.UUID, data: PaymentMethodCreate, session: Session,
                             principal: CurrentPrincipal, actor: CurrentActor, scope: BillsSave) -> PaymentMethodRead:
    """Put a card on file by its gateway token."""
    return await service.add_card(session, principal, actor, scope, patient_id, data)


@router.delete("/patients/{patient_id}/payment-methods/{payment_method_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=WRITE_ERRORS)
async def deactivate_payment_method(patient_id: uuid.UUID, payment_method_id: uuid.UUID, session: Session,
                                    principal: CurrentPrincipal, actor: CurrentActor, scope: BillsSave) -> None:
    """Deactivate a card: AutoPay no longer uses it."""
    await service.deactivate_card(session, principal, actor, scope, patient_id, payment_method_id)


@router.get("/patients/{patient_id}/documents", response_model=DocumentPage, responses=READ_ERRORS)
async def list_patient_documents(
    patient_id: uuid.UUID, session: Session, actor: CurrentActor, scope: BillsView,
    log: AccessLog, paging: Paging,
    include_unshared: Annotated[bool, Query(description="Also documents not (yet) shared with the patient.")] = False,
) -> DocumentPage:
    """The patient's billing documents (bills, superbills, statements with the open bills they list), newest
    first: by default the shared ones, which is what the patient sees."""
    items, rows = await service.list_documents(session, actor, scope, log, patient_id,
                                               not include_unshared, paging.limit, paging.after)
    return DocumentPage(items=items, next_cursor=next_cursor(rows, paging.limit))


# Superbills and statements made by hand


@router.post("/patients/{patient_id}/documents", dependencies=[Idempotent], response_model=DocumentRead,
             status_code=status.HTTP_201_CREATED, responses=WRITE_ERRORS)
async def create_patient_document(patient_id: uuid.UUID, data: DocumentCreate, session: Session,
                                  principal: CurrentPrincipal, actor: CurrentActor, view: BillsView,
                                  save: BillsSave, log: AccessLog) -> DocumentRead:
    """Make a superbill or statement by hand, for a past calendar month (`period_start` its first day,
    `period_end` its last) or, for a superbill, for chosen sessions in one past month (imported ones included;
    the nightly run never picks those up); the month is then the superbill's period. A superbill lists the
    sessions with a CPT code (their fees summed, as the nightly run's); a statement lists the patient's issued
    bills with a balance for services up to the period's end. Needs `bills:save` (and `bills:view`) on the
    bills of every provider concerned: another provider's session you may not see is 404, a provider whose
    bills you may see but not save 403. One per patient, kind and month, whoever made it (the nightly run
    included, and it makes none for a month that has one): a second is 409 `document_exists_for_period` with
    the `existing_id`. Shared as the nightly run's documents are: by the patient's own sharing of the kind,
    after its delay."""
    return await service.create_document(session, principal, actor, view, save, log, patient_id, data)


@router.get("/patients/{patient_id}/documents/{document_id}", response_model=DocumentRead, responses=READ_ERRORS)
async def get_patient_document(patient_id: uuid.UUID, document_id: uuid.UUID, session: Session, actor: CurrentActor,
                               scope: BillsView, log: AccessLog) -> DocumentRead:
    """One of the patient's billing documents, shared or not, under the list's rules (its PDF: `/pdf`)."""
    return await service.get_document(session, actor, scope, log, patient_id, document_id)
