"""HTTP for documents as PDF: a bill's, and a patient's superbill or statement (or bill document). Each is read
exactly as its JSON is (the same guard, the same 404s, its own access-log row), then rendered."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from billing_api.access_log.service import AccessLog
from billing_api.authz.dependencies import BillsView, CurrentActor
from billing_api.automation import service as automation_service
from billing_api.bills.reader import BillsReader
from billing_api.db import Session
from billing_api.documents import service
from billing_api.documents.views import DocumentView
from billing_api.errors import problem_responses
from billing_api.models import DocumentKind

PDF = "application/pdf"


class PdfResponse(Response):
    media_type = PDF


def _responses(*errors: int) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": "The document as PDF (deterministic: the same document gives the same bytes).",
              "content": {PDF: {"schema": {"type": "string", "format": "binary", "maxLength": 10_000_000}}},
              "headers": {"Content-Disposition": {
                  "description": "`inline` with the file's name: `<kind>-<date>-<reference>.pdf`.",
                  "schema": {"type": "string", "maxLength": 100}}}},
        **problem_responses(*errors),
    }


router = APIRouter(prefix="/v1")  # reads only: no Idempotency-Key to honour


def _pdf(view: DocumentView) -> Response:
    return PdfResponse(service.pdf(view), headers={
        "Content-Disposition": f'inline; filename="{service.file_name(view)}"'})


@router.get("/bills/{bill_id}/pdf", response_class=PdfResponse, tags=["bills"], responses=_responses(401, 404, 422))
async def get_bill_pdf(bill_id: uuid.UUID, session: Session, reader: BillsReader) -> Response:
    """The bill as PDF, for whoever may see the bill (`GET /v1/bills/{bill_id}`'s rules; any other bill is not
    found): practice, provider, patient, date of service, payer, each line's code, modifiers, diagnosis pointers,
    units and fee, the total, what was paid and the balance."""
    bill, lines = await reader.bill_rows(bill_id, "bill_pdf")
    return _pdf(await service.bill_document(session, bill, lines))


@router.get("/patients/{patient_id}/documents/{document_id}/pdf", response_class=PdfResponse,
            tags=["billing automation"], responses=_responses(401, 403, 404, 422))
async def get_patient_document_pdf(patient_id: uuid.UUID, document_id: uuid.UUID, session: Session,
                                   actor: CurrentActor, scope: BillsView, log: AccessLog,
                                   reader: BillsReader) -> Response:
    """One of the patient's documents as PDF, under the documents list's rules. A superbill lists the sessions of
    its period (dates, codes, diagnoses, fees) with what was paid, those of providers whose bills the caller may
    view (the others are counted, not shown); a statement the open bills it was made with and the amount due. A
    `bill` document is its bill's PDF, under the bill's own rules: 404 for whoever may not see that bill."""
    patient, document = await automation_service.visible_document(session, actor, scope, patient_id, document_id)
    if document.kind == DocumentKind.bill:
        bill, lines = await reader.bill_rows(document.bill_id, "patient_document_pdf")
        return _pdf(await service.bill_document(session, bill, lines))
    await automation_service.record_document_read(actor, scope, log, patient, document, "patient_document_pdf")
    if document.kind == DocumentKind.superbill:
        return _pdf(await service.superbill_document(session, document, reader.may_show_fees))
    return _pdf(await service.statement_document(session, document))
