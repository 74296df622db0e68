"""Documents from the rows: the view model of a bill, a superbill or a statement (one small mapping function per
kind, from rows already read, so that a new field is wired in one place), and the PDF's bytes and file name.
Access is decided before any of this: by the BillReader for a bill, by automation's document read otherwise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.automation import repository as automation_repository
from billing_api.billing_identity.service import (
    DocumentIdentity,
    PracticeIdentity,
    ProviderIdentity,
    identity_for_documents,
)
from billing_api.codes.rules import DIAGNOSIS_LABELS, SERVICE_LABELS
from billing_api.documents import repository
from billing_api.documents.render import render
from billing_api.documents.views import (
    DiagnosisView,
    DocumentKind,
    DocumentView,
    LineView,
    PatientView,
    PayerView,
    PracticeView,
    ProviderView,
    StatementItemView,
)
from billing_api.models import (
    Bill,
    BillingContact,
    BillingDocument,
    BillLine,
    Company,
    Encounter,
    EncounterLine,
    Patient,
    StatementItem,
    User,
)

# Rows to parts


def practice_view(company: Company, identity: PracticeIdentity) -> PracticeView:
    place = " ".join(filter(None, (identity.place_of_service, identity.place_of_service_name))) or None
    return PracticeView(name=company.name, billing_name=identity.legal_name, tax_id=identity.tax_id,
                        business_number=identity.business_number, address=identity.address_lines or (),
                        phone=identity.phone, place_of_service=place)


def provider_view(user: User, identity: ProviderIdentity) -> ProviderView:
    return ProviderView(name=user.display_name, billing_number=user.billing_number, credentials=identity.credentials,
                        npi=identity.npi, provincial_billing_number=identity.provincial_billing_number,
                        province=identity.province)


def patient_view(patient: Patient, contact: BillingContact | None = None) -> PatientView:
    return PatientView(name=f"{patient.first_name} {patient.last_name}", date_of_birth=patient.date_of_birth,
                       bill_to=contact.name if contact else None)


def diagnosis_views(diagnoses: Iterable[dict]) -> tuple[DiagnosisView, ...]:
    """A bill's or session's diagnoses (`{code_system, code}`, as stored)."""
    return tuple(DiagnosisView(code_system=_label(DIAGNOSIS_LABELS, d["code_system"]), code=d["code"])
                 for d in diagnoses)


def _label(labels: dict, system) -> str | None:
    """A code system as documents name it (CPT, ICD-10-CM); an unknown one as it is."""
    return labels.get(system, system) if system is not None else None


def line_view(line: BillLine | EncounterLine, **context) -> LineView:
    """A service line: its code system and code, modifiers and diagnosis pointers."""
    return LineView(
        description=line.description, units=line.units, fee_cents=line.fee_cents, code=line.code,
        code_system=_label(SERVICE_LABELS, line.code_system), modifiers=tuple(line.modifiers or ()),
        diagnosis_pointers=tuple(line.diagnosis_pointers or ()), **context)


# One view per kind


def bill_view(bill: Bill, lines: Sequence[BillLine], *, patient: Patient, provider: User, company: Company,
              identity: DocumentIdentity, payer: PayerView | None = None) -> DocumentView:
    return DocumentView(
        kind=DocumentKind.bill, reference=str(bill.id), issued_at=bill.created_at,
        practice=practice_view(company, identity.practice), patient=patient_view(patient),
        providers=(provider_view(provider, identity.providers[provider.id]),), payer=payer,
        coverage=bill.coverage.value, status=bill.status.value, service_date=bill.service_date,
        diagnoses=diagnosis_views(bill.diagnoses), lines=tuple(line_view(line) for line in lines),
        total_cents=bill.total_cents, paid_cents=bill.total_cents - bill.balance_cents,
        balance_cents=bill.balance_cents)


def superbill_view(document: BillingDocument, sessions: Sequence[tuple[Encounter, Sequence[EncounterLine]]], *,
                   paid_cents: int, patient: Patient, providers: dict, company: Company, identity: DocumentIdentity,
                   payer: PayerView | None = None, omitted_sessions: int = 0) -> DocumentView:
    """The sessions of the period, each line dated and (when several treat the patient) naming its provider. The
    diagnoses are those of all the sessions, once each; a line's pointers are renumbered into that list."""
    diagnoses: list[DiagnosisView] = []
    lines = []
    provider_ids = list(dict.fromkeys(encounter.provider_id for encounter, _ in sessions))
    for encounter, encounter_lines in sessions:
        own = diagnosis_views(encounter.diagnoses)
        for diagnosis in own:
            if diagnosis not in diagnoses:
                diagnoses.append(diagnosis)
        for line in encounter_lines:
            view = line_view(line, service_date=encounter.service_date,
                             provider=providers[encounter.provider_id].display_name)
            pointers = tuple(diagnoses.index(own[p - 1]) + 1 for p in view.diagnosis_pointers if 0 < p <= len(own))
            lines.append(replace(view, diagnosis_pointers=pointers))
    total = sum(line.amount_cents for line in lines)
    return DocumentView(
        kind=DocumentKind.superbill, reference=str(document.id), issued_at=document.created_at,
        practice=practice_view(company, identity.practice), patient=patient_view(patient), payer=payer,
        providers=tuple(provider_view(providers[p], identity.providers[p]) for p in provider_ids),
        period_start=document.period_start,
        period_end=document.period_end, diagnoses=tuple(diagnoses), lines=tuple(lines), total_cents=total,
        paid_cents=paid_cents, balance_cents=total - paid_cents, omitted_sessions=omitted_sessions)


def statement_view(document: BillingDocument, items: Sequence[StatementItem], *, patient: Patient,
                   contact: BillingContact | None, providers: dict, company: Company,
                   identity: DocumentIdentity) -> DocumentView:
    """The open bills as they stood when the statement was made (a snapshot); the amount due is their balance."""
    views = tuple(StatementItemView(reference=str(item.bill_id), service_date=item.service_date,
                                    provider=providers[item.provider_id].display_name, total_cents=item.total_cents,
                                    balance_cents=item.balance_cents) for item in items)
    total = sum(item.total_cents for item in views)
    balance = sum(item.balance_cents for item in views)
    provider_ids = list(dict.fromkeys(item.provider_id for item in items))
    return DocumentView(
        kind=DocumentKind.statement, reference=str(document.id), issued_at=document.created_at,
        practice=practice_view(company, identity.practice), patient=patient_view(patient, contact),
        providers=tuple(provider_view(providers[p], identity.providers[p]) for p in provider_ids),
        period_start=document.period_start,
        period_end=document.period_end, items=views, total_cents=total, paid_cents=total - balance,
        balance_cents=balance, amount_due_cents=document.total_cents)


# Reading the rows


async def _payer(session: AsyncSession, payer_id) -> PayerView | None:
    name = await repository.payer_name(session, payer_id) if payer_id is not None else None
    return PayerView(name) if name is not None else None


async def bill_document(session: AsyncSession, bill: Bill, lines: Sequence[BillLine]) -> DocumentView:
    """A bill names its payer (insured) or none (the patient pays)."""
    providers = await repository.users(session, {bill.provider_id})
    return bill_view(bill, lines, patient=await repository.patient(session, bill.patient_id),
                     provider=providers[bill.provider_id], company=await repository.company(session, bill.company_id),
                     identity=await identity_for_documents(session, provider_ids=[bill.provider_id],
                                                           company_id=bill.company_id),
                     payer=await _payer(session, bill.payer_id))


async def superbill_document(session: AsyncSession, document: BillingDocument,
                             may_show_fees: Callable[[Encounter], Awaitable[bool]]) -> DocumentView:
    """The superbill's sessions that the reader may see the fees of (`BillReader.may_show_fees`: the bill scope
    decides, as on an encounter); the others are counted, not shown. The JSON gives only the document's total,
    so its PDF shows no more of a provider's charges than their bills would."""
    every = await repository.superbill_sessions(session, document.id, document.company_id, document.patient_id,
                                                document.period_start, document.period_end)
    permitted = {}
    for encounter, _ in every:
        if encounter.provider_id not in permitted:
            permitted[encounter.provider_id] = await may_show_fees(encounter)
    sessions = [(encounter, lines) for encounter, lines in every if permitted[encounter.provider_id]]
    provider_ids = {encounter.provider_id for encounter, _ in sessions}
    patient = await repository.patient(session, document.patient_id)
    # The patient sends a superbill to their insurer: the payer of record, when there is one.
    return superbill_view(
        document, sessions, omitted_sessions=len(every) - len(sessions),
        paid_cents=await repository.paid_for_encounters(session, [encounter.id for encounter, _ in sessions]),
        patient=patient, providers=await repository.users(session, provider_ids),
        company=await repository.company(session, document.company_id),
        identity=await identity_for_documents(session, provider_ids=provider_ids, company_id=document.company_id),
        payer=await _payer(session, patient.payer_id))


async def statement_document(session: AsyncSession, document: BillingDocument) -> DocumentView:
    items = (await automation_repository.statement_items(session, [document.id])).get(document.id, [])
    provider_ids = {item.provider_id for item in items}
    return statement_view(
        document, items, patient=await repository.patient(session, document.patient_id),
        contact=await repository.billing_contact(session, document.patient_id),
        providers=await repository.users(session, provider_ids),
        company=await repository.company(session, document.company_id),
        identity=await identity_for_documents(session, provider_ids=provider_ids, company_id=document.company_id))


# The file


def file_name(view: DocumentView) -> str:
    """`<kind>-<date of service or period start>-<first part of the reference>.pdf`: ASCII, no quotes."""
    when = view.service_date or view.period_start or view.issued_at.date()
    return f"{view.kind.value}-{when.isoformat()}-{view.reference.split('-')[0]}.pdf"


def pdf(view: DocumentView) -> bytes:
    return render(view)
