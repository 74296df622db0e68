"""The main journeys through a Python SDK generated from openapi/openapi.json (openapi-python-client), against a
running service. Nothing generated is committed: a contract change that breaks the generator or the SDK's models
fails here. The invitation mail goes through real SMTP (aiosmtpd on loopback)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from billing_api.demo import DEMO_PASSWORD
from tests.conftest import ROOT
from tests.support import smtp

PACKAGE = "billing_api_client"
NEW_PASSWORD = "sdk-journey-password-1"


def _import_sdk(out: Path) -> SimpleNamespace:
    sys.path.insert(0, str(out))
    try:
        client = importlib.import_module(PACKAGE)
        models = importlib.import_module(f"{PACKAGE}.models")
    finally:
        sys.path.remove(str(out))

    def api(tag: str, operation: str):
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")

    return SimpleNamespace(Client=client.Client, AuthenticatedClient=client.AuthenticatedClient, models=models,
                           api=api)


@pytest.fixture(scope="module")
async def sdk_and_service(start_live_service, tmp_path_factory):
    """The SDK generated into a temp dir and imported (the generator formats with ruff, from the venv), and a
    service whose mail goes to a collecting SMTP server. The generator runs while the service starts."""
    out = tmp_path_factory.mktemp("sdk")
    bin_dir = Path(sys.executable).parent
    generator = subprocess.Popen(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", str(ROOT / "openapi" / "openapi.json"),
         "--output-path", str(out / PACKAGE), "--meta", "none",
         "--config", str(ROOT / "openapi" / "python-client.yaml")],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    controller, port = smtp.start(smtp.Collector())
    try:
        service = await start_live_service({"BILLING_API_SMTP_HOST": "127.0.0.1", "BILLING_API_SMTP_PORT": str(port),
                                            "BILLING_API_SMTP_STARTTLS": "false"})
        output, _ = generator.communicate(timeout=300)
        assert generator.returncode == 0, output
        assert "Warning" not in output, output  # the generator left nothing of the contract out
        yield _import_sdk(out), service, controller.handler
    finally:
        if generator.poll() is None:
            generator.kill()
        controller.stop()


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.content)
    return response.parsed


def refused(response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.content)
    assert response.parsed.code == code, response.content


class Journeys:
    def __init__(self, sdk: SimpleNamespace, base_url: str) -> None:
        self.sdk, self.base_url = sdk, base_url
        self.anonymous = sdk.Client(base_url=base_url, raise_on_unexpected_status=True)

    def login(self, username: str, password: str = DEMO_PASSWORD):
        body = self.sdk.models.BodyCreateToken(username=username, password=password)
        token = ok(self.sdk.api("auth", "create_token").sync_detailed(client=self.anonymous, body=body))
        assert token.token_type == "bearer" and token.expires_in > 0
        return self.sdk.AuthenticatedClient(base_url=self.base_url, token=token.access_token)

    def me(self, client):
        return ok(self.sdk.api("me", "get_me").sync_detailed(client=client))

    def bills(self, client, **query) -> list:
        return ok(self.sdk.api("bills", "list_bills").sync_detailed(client=client, limit=200, **query)).items

    def bill(self, client, bill_id):
        return self.sdk.api("bills", "get_bill").sync_detailed(bill_id, client=client)

    def user_id(self, client, username: str):
        page = ok(self.sdk.api("users", "list_users").sync_detailed(client=client, q=username))
        (user,) = [u for u in page.items if u.username == username]
        return user.id


def test_main_journeys_through_the_generated_sdk(sdk_and_service):
    sdk, service, mailbox = sdk_and_service
    j = Journeys(sdk, service.base_url)
    models, api = sdk.models, sdk.api

    # Log in: a wrong password is the same 401 problem as an unknown user.
    refused(api("auth", "create_token").sync_detailed(
        client=j.anonymous, body=models.BodyCreateToken(username="dr.wu", password="wrong")), 401,
        "invalid_credentials")
    admin, wu, bob, clara, north = (j.login(name) for name in
                                    ("clinic.admin", "dr.wu", "bob.clerk", "clara.clerk", "dr.north"))
    wu_me = j.me(wu)
    assert wu_me.user.username == "dr.wu"
    clinic_id, wu_id = wu_me.company.id, wu_me.user.id
    wu_bills = [b for b in j.bills(wu) if b.provider_id == wu_id]
    assert wu_bills  # the owner sees their own
    # Segregation is off in the demo: company-wide access, so Clara (a clerk) sees Dr. Wu's bills for now.
    assert wu_id in {b.provider_id for b in j.bills(clara)}

    # A delegation list, password-confirmed: Dr. Wu gives Bob (a clerk) the financial viewer preset.
    delegation = api("delegation", "save_delegation_list")
    current = ok(api("delegation", "get_delegation_list").sync_detailed(wu_id, client=wu))
    bob_id = j.user_id(admin, "bob.clerk")
    save = {"entries": [{"user_id": str(bob_id), "role": "financial_viewer"}], "version": current.version}
    refused(delegation.sync_detailed(wu_id, client=wu, body=models.DelegationListSave.from_dict(
        {**save, "password": "not-my-password"})), 403, "password_confirmation_failed")
    saved = ok(delegation.sync_detailed(wu_id, client=wu, body=models.DelegationListSave.from_dict(
        {**save, "password": DEMO_PASSWORD})))
    assert saved.version == current.version + 1
    assert [(e.user_id, e.role) for e in saved.entries] == [(bob_id, "financial_viewer")]

    # Segregation on (every provider with bills now has a list): lists decide who sees whose bills.
    segregation = ok(api("segregation", "get_billing_segregation").sync_detailed(clinic_id, client=admin))
    assert segregation.ready and not segregation.enabled
    enabled = ok(api("segregation", "enable_billing_segregation").sync_detailed(
        clinic_id, client=admin, body=models.SegregationEnable(password=DEMO_PASSWORD)))
    assert enabled.enabled

    # Read bills as owner, delegate and outsiders: not visible is 404.
    some_bill = wu_bills[0]
    assert ok(j.bill(wu, some_bill.id)).id == some_bill.id
    assert ok(j.bill(bob, some_bill.id)).total_cents == some_bill.total_cents
    assert wu_id in {b.provider_id for b in j.bills(bob)}
    refused(j.bill(clara, some_bill.id), 404, "bill_not_found")  # same clinic, not on Dr. Wu's list
    refused(j.bill(north, some_bill.id), 404, "bill_not_found")  # another company
    assert wu_id not in {b.provider_id for b in j.bills(clara)}

    # Invite a user with a role preset; the mail arrives over SMTP; accept signed out; log in; see the bills.
    invited = ok(api("team", "create_invitation").sync_detailed(wu_id, client=wu, body=models.InvitationCreate.from_dict(
        {"email": "sdk.invitee@example.org", "username": "sdk.invitee", "role": "data_entry"})), 201)
    assert invited.state == "pending" and invited.role == "data_entry"
    token = smtp.token_of(mailbox.wait_for("sdk.invitee@example.org", timeout=30)[-1])
    accepted = ok(api("team", "accept_invitation").sync_detailed(
        client=j.anonymous, body=models.InvitationAccept(token=token, password=NEW_PASSWORD)))
    assert accepted.account_created and accepted.provider_id == wu_id
    refused(api("team", "accept_invitation").sync_detailed(
        client=j.anonymous, body=models.InvitationAccept(token=token, password=NEW_PASSWORD)), 409,
        "invitation_already_accepted")
    invitee = j.login("sdk.invitee", NEW_PASSWORD)
    assert ok(j.bill(invitee, some_bill.id)).id == some_bill.id
    team = ok(api("team", "get_team").sync_detailed(wu_id, client=wu))
    assert {(m.username, m.source) for m in team.members} == {("bob.clerk", "list"), ("sdk.invitee", "invitation")}

    # The invitee (data entry) enters an OHIP claim for Dr. Wu: fee code A007A for diagnostic code 300. Insured,
    # it goes to the patient's payer of record (OHIP); a fee code of the wrong shape is refused, naming the line.
    claim = {"provider_id": str(wu_id), "patient_id": str(some_bill.patient_id), "coverage": "insured",
             "service_date": "2026-11-20", "diagnoses": [{"code_system": "ohip_dx", "code": "300"}]}
    line = {"code_system": "ohip", "description": "Intermediate assessment", "units": 1, "fee_cents": 3785}
    create_bill = api("bills", "create_bill")
    wrong = create_bill.sync_detailed(client=invitee, body=models.BillCreate.from_dict(
        {**claim, "lines": [{**line, "code": "A07"}]}))
    refused(wrong, 422, "service_code_invalid")
    assert wrong.parsed.additional_properties["field"] == "lines[0].code"
    ohip_bill = ok(create_bill.sync_detailed(client=invitee, body=models.BillCreate.from_dict(
        {**claim, "lines": [{**line, "code": "A007A", "diagnosis_pointers": [1]}]})), 201)
    assert [(x.code_system, x.code, x.diagnosis_pointers) for x in ohip_bill.lines] == [("ohip", "A007A", [1])]
    assert [(d.code_system, d.code) for d in ohip_bill.diagnoses] == [("ohip_dx", "300")]
    assert ok(api("payers", "get_payer").sync_detailed(clinic_id, ohip_bill.payer_id, client=wu)).name == "OHIP"
    claim_pdf = ok(api("bills", "get_bill_pdf").sync_detailed(ohip_bill.id, client=invitee))
    assert claim_pdf.payload.read().startswith(b"%PDF-")

    # Billing customer assignments (the EMS seed): Betty gives Barney West EMS East directly.
    betty, barney = j.login("betty"), j.login("barney")
    barney_id = j.user_id(betty, "barney")
    assignments = api("billing_customer_assignments", "set_user_billing_customer_assignments")
    before = ok(api("billing_customer_assignments", "get_user_billing_customer_assignments").sync_detailed(
        barney_id, client=betty))
    names = {item.company_name: item for item in before.items}
    reached = [str(item.company_id) for item in before.items if item.reached]
    east = names["West EMS East"]
    assert not east.reached and len(reached) == 2  # North and South, through the Biller role
    east_provider = j.me(j.login("dr.east")).user.id
    assert east_provider not in {b.provider_id for b in j.bills(barney)}
    after = ok(assignments.sync_detailed(barney_id, client=betty, body=models.CompanyIdsSet.from_dict(
        {"company_ids": [*reached, str(east.company_id)]})))
    assert {i.company_name for i in after.items if i.reached} == {"West EMS North", "West EMS South", "West EMS East"}
    assert east_provider in {b.provider_id for b in j.bills(barney)}
    refused(assignments.sync_detailed(barney_id, client=betty, body=models.CompanyIdsSet.from_dict(
        {"company_ids": [str(east.company_id)]})), 422, "assignment_given_by_role")

    # An ambulance run in East (HCPCS A0427, origin and destination RH) to Medicare Part B, kept at the parent:
    # refused until Betty copies it down, then the bill names East's copy.
    west_id = j.me(betty).company.id
    medicare = next(p for p in ok(api("payers", "list_payers").sync_detailed(west_id, client=betty)).items
                    if p.name == "Medicare Part B")
    east_patient = ok(api("patients", "list_patients").sync_detailed(
        client=barney, company_id=east.company_id)).items[0]
    ambulance_run = {"provider_id": str(east_provider), "patient_id": str(east_patient.id), "coverage": "insured",
                     "service_date": "2026-11-21",
                     "lines": [{"code_system": "hcpcs", "code": "A0427", "modifiers": ["RH"],
                                "description": "Ambulance, ALS emergency", "units": 1, "fee_cents": 98000}]}
    not_copied = api("bills", "create_bill").sync_detailed(client=barney, body=models.BillCreate.from_dict(
        {**ambulance_run, "payer_id": str(medicare.id)}))
    refused(not_copied, 422, "payer_not_copied_down")
    copy_down = not_copied.parsed.additional_properties["copy_down"]
    copied = ok(api("payers", "copy_payer").sync_detailed(west_id, medicare.id, client=betty,
                                                          body=models.CopyRequest.from_dict(
                                                              {"company_ids": copy_down["company_ids"]})))
    east_medicare = copied.items[0].id
    ems_bill = ok(api("bills", "create_bill").sync_detailed(client=barney, body=models.BillCreate.from_dict(
        {**ambulance_run, "payer_id": str(east_medicare)})), 201)
    assert (ems_bill.payer_id, ems_bill.company_id) == (east_medicare, east.company_id)
    assert [(x.code_system, x.code, x.modifiers) for x in ems_bill.lines] == [("hcpcs", "A0427", ["RH"])]

    # Billing automation: daily bills, a patient seen yesterday, run tonight, the new bill is there.
    settings = ok(api("billing_automation", "put_company_billing_automation").sync_detailed(
        clinic_id, client=admin, body=models.CompanyAutomationUpdate.from_dict({
            "bill_creation": "daily", "superbill_day": 1, "autopay_enabled": False,
            "bills": {"enabled": True, "delay_minutes": 60}, "superbills": {"enabled": False, "delay_minutes": 0},
            "statements": {"enabled": False, "delay_minutes": 0}})))
    assert settings.bill_creation == "daily" and settings.warnings == []
    tonight = datetime.now(ZoneInfo(settings.time_zone)).date()
    patient = ok(api("patients", "create_patient").sync_detailed(client=admin, body=models.PatientCreate.from_dict(
        {"company_id": str(clinic_id), "first_name": "Sdk", "last_name": "Patient"})), 201)
    ok(api("encounters", "create_encounter").sync_detailed(client=admin, body=models.EncounterCreate.from_dict({
        "patient_id": str(patient.id), "provider_id": str(wu_id),
        "service_date": (tonight - timedelta(days=1)).isoformat(),
        "diagnoses": [{"code_system": "icd10cm", "code": "F41.1"}],
        "lines": [{"code_system": "cpt", "code": "90837", "diagnosis_pointers": [1],
                   "description": "Psychotherapy, 60 minutes", "units": 1, "fee_cents": 16000}]})), 201)
    run = ok(api("billing_automation", "run_billing_automation").sync_detailed(
        clinic_id, client=admin, body=models.RunRequest.from_dict({"date": tonight.isoformat(), "stages": ["bills"]})))
    (result,) = run.results
    assert (result.stage, result.outcome, result.run.counts["bills_created"]) == ("bills", "completed", 1)
    again = ok(api("billing_automation", "run_billing_automation").sync_detailed(
        clinic_id, client=admin, body=models.RunRequest.from_dict({"date": tonight.isoformat(), "stages": ["bills"]})))
    assert again.results[0].outcome == "already_run"
    created = [b for b in j.bills(wu) if b.patient_id == patient.id]
    assert [(b.source, b.status, b.total_cents) for b in created] == [("automation", "submitted", 16000)]
    assert [(d.code_system, d.code) for d in created[0].diagnoses] == [("icd10cm", "F41.1")]
    assert [(x.code_system, x.code, x.diagnosis_pointers) for x in created[0].lines] == [("cpt", "90837", [1])]
    refused(j.bill(clara, created[0].id), 404, "bill_not_found")  # automation's bills follow the same rules
    runs = ok(api("billing_automation", "list_billing_automation_runs").sync_detailed(clinic_id, client=admin))
    assert [(r.stage, r.local_date) for r in runs.items] == [("bills", tonight)]

    # An imported session of last month is never billed by the night: Dr. Wu makes its superbill by hand, once.
    last_month = tonight.replace(day=1) - timedelta(days=1)
    create_encounter = api("encounters", "create_encounter")
    imported = ok(create_encounter.sync_detailed(client=admin, body=models.EncounterCreate.from_dict({
        "patient_id": str(patient.id), "provider_id": str(wu_id), "service_date": last_month.isoformat(),
        "imported": True, "diagnoses": [{"code_system": "icd10cm", "code": "F41.1"}],
        "lines": [{"code_system": "cpt", "code": "90837", "diagnosis_pointers": [1],
                   "description": "Psychotherapy, 60 minutes", "units": 1, "fee_cents": 16000}]})), 201)
    make_superbill = api("billing_automation", "create_patient_document")
    body = models.DocumentCreate.from_dict({"kind": "superbill", "encounter_ids": [str(imported.id)]})
    superbill = ok(make_superbill.sync_detailed(patient.id, client=wu, body=body), 201)
    assert (superbill.kind, superbill.total_cents) == ("superbill", 16000)
    assert [(e.encounter_id, e.imported) for e in superbill.encounters] == [(imported.id, True)]
    again = make_superbill.sync_detailed(patient.id, client=wu, body=body)
    refused(again, 409, "document_exists_for_period")
    assert again.parsed.additional_properties["existing_id"] == str(superbill.id)
    superbill_pdf = ok(api("billing_automation", "get_patient_document_pdf").sync_detailed(
        patient.id, superbill.id, client=wu))
    assert superbill_pdf.payload.read().startswith(b"%PDF-")
