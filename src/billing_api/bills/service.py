"""Bill rules: what each surface returns, and the draft -> submitted lifecycle. Access is the scope's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from operator import itemgetter

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.audit.service import record
from billing_api.auth.principal import Principal
from billing_api.authz.scope import BillScope
from billing_api.bills.repository import BillRepository
from billing_api.bills.schemas import BillCreate, BillRead, BillUpdate
from billing_api.codes import service as codes
from billing_api.db import Record
from billing_api.errors import Conflict, Forbidden, NotFound, Unprocessable
from billing_api.events.schemas import BillCreated, BillSubmitted
from billing_api.events.service import emit
from billing_api.models import Bill, BillLine, BillStatus, Coverage, EncounterLine, Patient
from billing_api.patients import repository as patients_repository
from billing_api.patients import service as patients_service
from billing_api.patients.schemas import ServiceLineRead
from billing_api.payers_facilities.service import billable_payer


async def present(repository: BillRepository, bills: list[Bill]) -> list[BillRead]:
    lines = await repository.lines([bill.id for bill in bills])
    return [
        BillRead(
            id=bill.id, company_id=bill.company_id, provider_id=bill.provider_id, patient_id=bill.patient_id,
            encounter_id=bill.encounter_id, visit_id=bill.visit_id, coverage=bill.coverage, payer_id=bill.payer_id,
            status=bill.status,
            source=bill.source, service_date=bill.service_date, total_cents=bill.total_cents,
            balance_cents=bill.balance_cents, diagnoses=bill.diagnoses, created_at=bill.created_at,
            updated_at=bill.updated_at, submitted_at=bill.submitted_at,
            lines=[ServiceLineRead.model_validate(line) for line in lines.get(bill.id, [])],
        )
        for bill in bills
    ]


# asyncpg's own UUID type is not one pydantic_core encodes natively (its fallback cost more than the rest of the
# page's encoding), so the ids go out as the strings they are in JSON.
_ID_FIELDS = ("id", "company_id", "provider_id", "patient_id", "encounter_id", "visit_id", "payer_id")


def api_diagnoses(stored: list[dict]) -> list[dict]:
    """Stored diagnoses (jsonb, which orders keys by their length) with their keys in the API's order."""
    return [{"code_system": diagnosis["code_system"], "code": diagnosis["code"]} for diagnosis in stored]


def presented_items(rows: list[Record]) -> list[dict]:
    """Rows of `BillRepository.presented_page` as the API's bills (the fields and order of BillRead): already
    valid, so they go straight to JSON without building models."""
    items = []
    for row in rows:
        item = dict(row.items())
        for field in _ID_FIELDS:
            if item[field] is not None:
                item[field] = str(item[field])
        if item["diagnoses"]:
            item["diagnoses"] = api_diagnoses(item["diagnoses"])
        items.append(item)
    return items


_SHOWN = itemgetter("provider_id", "company_id", "patient_id", "id")


def shown(bills: list[Bill] | list[Record]) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]]:
    """What the access log records of bills shown: (provider, company, patient, bill) of each. A page's rows are
    read by key (by attribute, each field would go through `Record.__getattr__`)."""
    return [_SHOWN(bill) if isinstance(bill, Record) else (bill.provider_id, bill.company_id, bill.patient_id, bill.id)
            for bill in bills]


async def visible_bill(repository: BillRepository, bill_id: uuid.UUID) -> Bill:
    bill = await repository.get(bill_id)
    if bill is None:
        raise NotFound("No such bill.", code="bill_not_found")
    return bill


def _lines(bill_id: uuid.UUID, lines: list[dict]) -> list[BillLine]:
    """Checked lines (codes.service) as the bill's rows."""
    return [
        BillLine(id=uuid.uuid4(), bill_id=bill_id, position=position, **columns)
        for position, columns in enumerate(lines)
    ]


async def _payer_of(session: AsyncSession, coverage: Coverage, payer_id: uuid.UUID | None,
                    patient: Patient) -> uuid.UUID | None:
    """Who the bill is sent to: an insured bill names a payer of its company (the one given, else the patient's
    payer of record); a private bill names none, the patient pays."""
    if coverage == Coverage.private:
        if payer_id is not None:
            raise Unprocessable("A private bill is paid by the patient: it names no payer.",
                                code="payer_not_allowed", extra={"field": "payer_id"})
        return None
    payer_id = payer_id or patient.payer_id
    if payer_id is None:
        raise Unprocessable("An insured bill names its payer: give `payer_id`, or set the patient's payer of "
                            "record.", code="payer_required", extra={"field": "payer_id"})
    return (await billable_payer(session, payer_id, patient.company_id)).id


def _total(lines: list[dict]) -> int:
    return sum(line["units"] * line["fee_cents"] for line in lines)


def _copied(line: EncounterLine) -> dict:
    return {name: getattr(line, name) for name in ("code_system", "code", "modifiers", "diagnosis_pointers",
                                                   "description", "units", "fee_cents")}


async def create_bill(
    session: AsyncSession, principal: Principal, view: BillScope, save: BillScope, data: BillCreate
) -> Bill:
    # Access to the patient comes with access to the provider's bills there (the one authorization function),
    # not from reach: an invited clerk works the provider's patients, and only theirs.
    patient = await patients_repository.get_patient(session, data.patient_id)
    if patient is None or not await BillRepository(session, view).permits(data.provider_id, patient.company_id):
        raise NotFound("No such patient, or no such provider for you there.", code="patient_not_found")
    await patients_service.provider_working_in(session, data.provider_id, patient.company_id)
    save_repository = BillRepository(session, save)
    if not await save_repository.permits(data.provider_id, patient.company_id):
        raise Forbidden("You may not save bills for this provider.", code="permission_denied",
                        extra={"permission": save.permission.value})
    systems = await codes.company_systems(session, patient.company_id)
    diagnoses = codes.checked_diagnoses(data.diagnoses, systems) if data.diagnoses is not None else None
    lines = None
    service_date = data.service_date
    if data.encounter_id is not None:
        encounter = await patients_repository.get_encounter(session, data.encounter_id)
        if encounter is None or encounter.patient_id != patient.id or encounter.provider_id != data.provider_id:
            raise Unprocessable("The encounter is of another patient or provider.", code="encounter_mismatch",
                                extra={"field": "encounter_id"})
        service_date = service_date or encounter.service_date
        if diagnoses is None:
            diagnoses = list(encounter.diagnoses)
        if data.lines is None:
            # The encounter's lines were checked when it was recorded; only their pointers are checked again
            # (against the diagnoses sent, when some were).
            copied = [line for line in await patients_repository.encounter_lines(session, encounter.id)
                      if line.code is not None]
            codes.check_pointers(copied, len(diagnoses))
            lines = [_copied(line) for line in copied]
    diagnoses = diagnoses if diagnoses is not None else []
    if data.lines is not None:
        lines = codes.checked_lines(data.lines, systems, len(diagnoses), codes_required=False)
    if data.visit_id is not None:
        visit = await patients_repository.get_visit(session, data.visit_id)
        if visit is None or visit.patient_id != patient.id or visit.provider_id != data.provider_id:
            raise Unprocessable("The visit is of another patient or provider.", code="visit_mismatch",
                                extra={"field": "visit_id"})
        service_date = service_date or visit.scheduled_at.date()
    if not lines:
        raise Unprocessable("A bill needs at least one line with a code.", code="bill_lines_required",
                            extra={"field": "lines"})
    if service_date is None:
        raise Unprocessable("`service_date` is required without an encounter or visit.",
                            code="service_date_required", extra={"field": "service_date"})
    payer_id = await _payer_of(session, data.coverage, data.payer_id, patient)
    total = _total(lines)
    bill = Bill(id=uuid.uuid4(), company_id=patient.company_id, provider_id=data.provider_id, patient_id=patient.id,
                encounter_id=data.encounter_id, visit_id=data.visit_id, coverage=data.coverage, payer_id=payer_id,
                service_date=service_date, total_cents=total, balance_cents=total, diagnoses=diagnoses)
    await save_repository.add(bill, _lines(bill.id, lines))
    record(session, principal, "bill.created", company_id=bill.company_id, target_type="bill", target_id=bill.id,
           details={"provider_id": str(bill.provider_id)})
    await emit(session, bill.company_id, BillCreated(bill_id=bill.id, provider_id=bill.provider_id,
                                                     patient_id=bill.patient_id, status=bill.status, source=bill.source,
                                                     coverage=bill.coverage, payer_id=bill.payer_id,
                                                     total_cents=bill.total_cents))
    return bill


async def _for_change(session: AsyncSession, view: BillScope, change: BillScope, bill_id: uuid.UUID) -> Bill:
    """Not visible: 404. Visible but not permitted: 403. Locked for the rest of the request."""
    await visible_bill(BillRepository(session, view), bill_id)
    bill = await BillRepository(session, change).get(bill_id, for_update=True)
    if bill is None:
        raise Forbidden("You may see this bill but not do that.", code="permission_denied",
                        extra={"permission": change.permission.value})
    return bill


def _require_draft(bill: Bill) -> None:
    if bill.status != BillStatus.draft:
        raise Conflict(f"The bill is {bill.status.value}; only drafts can be changed.", code="bill_not_draft")


async def update_bill(session: AsyncSession, principal: Principal, view: BillScope, save: BillScope,
                      bill_id: uuid.UUID, data: BillUpdate) -> Bill:
    bill = await _for_change(session, view, save, bill_id)
    _require_draft(bill)
    changes = data.changes("coverage", "service_date", "diagnoses", "lines")
    systems = await codes.company_systems(session, bill.company_id)
    diagnoses = codes.checked_diagnoses(data.diagnoses, systems) if data.diagnoses is not None else bill.diagnoses
    lines = None
    if data.lines is not None:
        lines = codes.checked_lines(data.lines, systems, len(diagnoses), codes_required=False)
    elif data.diagnoses is not None:
        kept = (await BillRepository(session, save).lines([bill.id])).get(bill.id, [])
        codes.check_pointers(kept, len(diagnoses))
    if "coverage" in changes or "payer_id" in changes:
        coverage = data.coverage or bill.coverage
        chosen = data.payer_id if "payer_id" in changes else (bill.payer_id if coverage == Coverage.insured else None)
        patient = await patients_repository.get_patient(session, bill.patient_id)
        bill.coverage, bill.payer_id = coverage, await _payer_of(session, coverage, chosen, patient)
    if data.service_date is not None:
        bill.service_date = data.service_date
    if data.diagnoses is not None:
        bill.diagnoses = diagnoses
    if lines is not None:
        await BillRepository(session, save).replace_lines(bill, _lines(bill.id, lines))
        bill.total_cents = bill.balance_cents = _total(lines)
    await session.flush()
    record(session, principal, "bill.updated", company_id=bill.company_id, target_type="bill", target_id=bill.id,
           details={"fields": sorted(changes)})
    return bill


async def submit_bill(session: AsyncSession, principal: Principal, view: BillScope, submit: BillScope,
                      bill_id: uuid.UUID) -> Bill:
    bill = await _for_change(session, view, submit, bill_id)
    _require_draft(bill)
    bill.status = BillStatus.submitted
    bill.submitted_at = datetime.now(UTC)
    await session.flush()
    record(session, principal, "bill.submitted", company_id=bill.company_id, target_type="bill", target_id=bill.id)
    await emit(session, bill.company_id, BillSubmitted(bill_id=bill.id, provider_id=bill.provider_id,
                                                       patient_id=bill.patient_id, total_cents=bill.total_cents,
                                                       balance_cents=bill.balance_cents))
    return bill


async def delete_bill(session: AsyncSession, principal: Principal, view: BillScope, delete: BillScope,
                      bill_id: uuid.UUID) -> None:
    bill = await _for_change(session, view, delete, bill_id)
    _require_draft(bill)
    await BillRepository(session, delete).delete(bill.id)
    record(session, principal, "bill.deleted", company_id=bill.company_id, target_type="bill", target_id=bill.id,
           details={"provider_id": str(bill.provider_id)})
