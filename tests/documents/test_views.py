"""Rows to view models, without the database: the mapping functions over model instances."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from billing_api.billing_identity.service import DocumentIdentity, PracticeIdentity, ProviderIdentity
from billing_api.documents.service import superbill_view
from billing_api.documents.views import DiagnosisView
from billing_api.models import BillingDocument, Company, DocumentKind, Encounter, EncounterLine, Patient, User


def test_a_superbills_diagnoses_are_each_sessions_once_and_the_pointers_follow_them():
    provider = User(id=uuid.uuid4(), display_name="Dr. Ada", billing_number=None)
    sessions = []
    for day, diagnoses in ((3, ["F41.1", "F32.0"]), (10, ["F32.0", "Z63.0"])):
        encounter = Encounter(id=uuid.uuid4(), provider_id=provider.id, service_date=date(2026, 11, day))
        encounter.diagnoses = [{"code_system": "ICD-10-CM", "code": code} for code in diagnoses]
        line = EncounterLine(position=0, code_system="cpt", code="90837", description="Psychotherapy", units=1,
                             fee_cents=15000)
        line.diagnosis_pointers = [1, 2]
        sessions.append((encounter, [line]))
    document = BillingDocument(id=uuid.uuid4(), kind=DocumentKind.superbill, period_start=date(2026, 11, 1),
                               period_end=date(2026, 11, 30), created_at=datetime(2026, 12, 1, tzinfo=UTC))
    view = superbill_view(document, sessions, paid_cents=10000, patient=Patient(first_name="Pat", last_name="Doe"),
                          providers={provider.id: provider}, company=Company(name="Calm Waters"),
                          identity=DocumentIdentity(providers={provider.id: ProviderIdentity()},
                                                    practice=PracticeIdentity()))
    assert view.diagnoses == tuple(DiagnosisView("ICD-10-CM", code) for code in ("F41.1", "F32.0", "Z63.0"))
    assert [line.diagnosis_pointers for line in view.lines] == [(1, 2), (2, 3)]
    assert [line.service_date.day for line in view.lines] == [3, 10]
    assert (view.total_cents, view.paid_cents, view.balance_cents) == (30000, 10000, 20000)
