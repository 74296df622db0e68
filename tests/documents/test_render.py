"""The renderer on its own, over view models with every field the rows may carry (some of which no row carries
yet: provider and practice identity, code systems, modifiers, diagnoses, payers): each shows when present, its
section is left out when absent, and the bytes depend on the document alone."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

from pypdf import PdfReader

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
)

ISSUED = datetime(2026, 11, 21, 14, 5, 9, 123456, tzinfo=UTC)


def words(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def claim(**changes) -> DocumentView:
    """An Ontario claim: OHIP fee code with its suffix, a diagnostic code, the provider's provincial number."""
    view = DocumentView(
        kind=DocumentKind.bill, reference="0b4f6c1e-8d5a-4e0b-9a57-3c2d1f0e9b7a", issued_at=ISSUED,
        practice=PracticeView(name="Lakeside Family Health", billing_name="Lakeside Family Health Inc.",
                              business_number="123456789RT0001", address=("12 King St W", "Toronto ON M5H 1A1"),
                              phone="416-555-0100", place_of_service="Office"),
        providers=(ProviderView(name="Dr. Łucja Żak", credentials="MD", provincial_billing_number="012345",
                                province="ON", npi="1234567893"),),
        patient=PatientView(name="Zoë Ng", date_of_birth=date(1990, 4, 1)), payer=PayerView(name="OHIP"),
        coverage="insured", status="submitted", service_date=date(2026, 11, 20),
        diagnoses=(DiagnosisView("ON-DX", "300"), DiagnosisView("ICD-10-CM", "F41.1")),
        lines=(LineView(description="General assessment", units=1, fee_cents=8765, code="A007A",
                        code_system="OHIP", modifiers=("25", "59"), diagnosis_pointers=(1, 2)),),
        total_cents=8765, paid_cents=0, balance_cents=8765)
    return DocumentView(**{**view.__dict__, **changes})


def test_every_identity_code_and_diagnosis_shows_when_the_view_has_it():
    text = words(render(claim()))
    for expected in ("Lakeside Family Health Inc.", "Business number: 123456789RT0001", "12 King St W",
                     "Phone: 416-555-0100", "Place of service: Office", "Dr. Lucja Zak, MD", "NPI: 1234567893",
                     "Provincial billing number: 012345 (ON)", "Zoë Ng", "Payer: OHIP", "1 ON-DX 300",
                     "2 ICD-10-CM F41.1", "OHIP A007A 25 59 1,2 General assessment 1 87.65 87.65",
                     "Total 87.65", "Balance 87.65"):
        assert expected in text, expected


def test_absent_parts_are_left_out():
    bare = claim(practice=PracticeView(name="Lakeside"), providers=(ProviderView(name="Dr. Ng"),), payer=None,
                 diagnoses=(), lines=(LineView(description="Visit", units=1, fee_cents=100, code="99213"),))
    text = words(render(bare))
    for absent in ("DIAGNOSES", "NPI", "Tax ID", "Business number", "Provincial", "Payer", "Phone"):
        assert absent not in text, absent
    assert "Coverage: insured" in text and "99213 Visit 1 1.00 1.00" in text


def test_the_same_document_gives_the_same_bytes_dated_by_the_document():
    first = render(claim())
    assert render(claim()) == first
    assert PdfReader(io.BytesIO(first)).metadata.creation_date.astimezone(UTC) == ISSUED.replace(microsecond=0)
    assert render(claim(issued_at=datetime(2026, 11, 22, tzinfo=UTC))) != first


def test_a_long_document_runs_onto_numbered_pages():
    lines = tuple(LineView(description=f"Session {n}", units=1, fee_cents=15000, code="90837", code_system="CPT",
                           service_date=date(2026, 10, 1 + n % 28)) for n in range(80))
    pdf = render(claim(kind=DocumentKind.superbill, lines=lines, total_cents=80 * 15000))
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    text = words(pdf)
    assert pages > 1 and f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert "Session 79" in text and "Total 12,000.00" in text
