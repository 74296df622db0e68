"""Service lines with code systems, modifiers and diagnosis pointers, and the diagnoses of bills and encounters,
over HTTP: each system's codes by its rule and the company's choice of systems, a 422 naming the line and the rule
for anything else (and nothing written), the deprecated `cpt_code` both ways, and the copies from an encounter."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from billing_api.models import AccountType, Company, User
from tests.helpers import assert_problem, count


@dataclass
class Office:
    company: Company
    admin: User
    provider: User
    patient_id: str
    factory: object

    def h(self, user: User | None = None) -> dict[str, str]:
        return self.factory.headers(user or self.provider)


@pytest.fixture
async def office(client, factory) -> Office:
    company = await factory.company()
    admin = await factory.user(company, account_type=AccountType.company_admin)
    provider = await factory.user(company, provider=True)
    response = await client.post("/v1/patients", headers=factory.headers(admin), json={
        "company_id": str(company.id), "first_name": "Pat", "last_name": "Doe"})
    assert response.status_code == 201, response.text
    return Office(company, admin, provider, response.json()["id"], factory)


async def choose(client, office: Office, **systems) -> dict:
    response = await client.patch(f"/v1/companies/{office.company.id}", headers=office.h(office.admin), json=systems)
    assert response.status_code == 200, response.text
    return response.json()


def line(**fields) -> dict:
    return {"description": "Service", "units": 1, "fee_cents": 5000, **fields}


async def new_bill(client, office: Office, lines: list[dict], **fields):
    return await client.post("/v1/bills", headers=office.h(), json={
        "provider_id": str(office.provider.id), "patient_id": office.patient_id, "coverage": "private",
        "service_date": "2026-11-20", "lines": lines, **fields})


async def test_an_ohip_claim_with_a_suffixed_fee_code_and_a_diagnostic_code(client, office):
    company = await choose(client, office, service_code_systems=["ohip"], diagnosis_code_systems=["ohip_dx"])
    assert (company["service_code_systems"], company["diagnosis_code_systems"]) == (["ohip"], ["ohip_dx"])
    response = await new_bill(client, office, [line(code_system="ohip", code="A007A", diagnosis_pointers=[1])],
                              diagnoses=[{"code_system": "ohip_dx", "code": "300"}])
    assert response.status_code == 201, response.text
    bill = response.json()
    assert bill["diagnoses"] == [{"code_system": "ohip_dx", "code": "300"}]
    assert bill["lines"] == [{"code_system": "ohip", "code": "A007A", "modifiers": [], "diagnosis_pointers": [1],
                              "description": "Service", "units": 1, "fee_cents": 5000, "cpt_code": None}]
    # The bill page (built by PostgreSQL, encoded without models) shows it byte for byte as the model does.
    single = await client.get(f"/v1/bills/{bill['id']}", headers=office.h())
    page = await client.get("/v1/bills", params={"patient_id": office.patient_id}, headers=office.h())
    assert single.status_code == page.status_code == 200
    assert page.content == b'{"items":[' + single.content + b'],"next_cursor":null}'


async def test_a_therapy_bill_with_cpt_modifiers_and_icd10(client, office):
    diagnoses = [{"code_system": "icd10cm", "code": "F411"}, {"code_system": "icd10cm", "code": "Z00.00"}]
    lines = [line(code_system="cpt", code="90837", modifiers=["95", "GT"], diagnosis_pointers=[2, 1]),
             line(code_system="hcpcs", code="G0283", diagnosis_pointers=[1])]
    response = await new_bill(client, office, lines, diagnoses=diagnoses)
    assert response.status_code == 201, response.text
    bill = response.json()
    assert [d["code"] for d in bill["diagnoses"]] == ["F41.1", "Z00.00"]  # stored with the dot
    assert [(x["code"], x["modifiers"], x["diagnosis_pointers"], x["cpt_code"]) for x in bill["lines"]] == [
        ("90837", ["95", "GT"], [2, 1], "90837"), ("G0283", [], [1], "G0283")]
    # Several bills on the page, with and without diagnoses: still the model's bytes, in the page's order.
    await new_bill(client, office, [line(code_system="cpt", code="99213")])
    page = await client.get("/v1/bills", params={"patient_id": office.patient_id}, headers=office.h())
    for item in page.json()["items"]:
        single = await client.get(f"/v1/bills/{item['id']}", headers=office.h())
        assert single.content in page.content


@pytest.mark.parametrize("systems, lines, diagnoses, code, field", [
    pytest.param({"service_code_systems": ["cpt"]}, [line(code_system="ohip", code="A007A")], [],
                 "code_system_not_used", "lines[0].code_system", id="system-not-used"),
    pytest.param({"service_code_systems": ["cpt", "hcpcs"]}, [line(code_system="cpt", code="99213"),
                                                             line(cpt_code="ABCDE")], [],
                 "code_system_not_used", "lines[1].code_system", id="legacy-after-choosing"),
    pytest.param({}, [line(code_system="cpt", code="99213"), line(code_system="cpt", code="9921")], [],
                 "service_code_invalid", "lines[1].code", id="cpt-four-digits"),
    pytest.param({}, [line(code_system="ohip", code="A07")], [], "service_code_invalid", "lines[0].code",
                 id="ohip-two-digits"),
    pytest.param({}, [line(code_system="ahcip", code="0303A")], [], "service_code_invalid", "lines[0].code",
                 id="ahcip-without-dot"),
    pytest.param({}, [line(code_system="msp", code="ABC")], [], "service_code_invalid", "lines[0].code",
                 id="msp-letters"),
    pytest.param({}, [line(code_system="ohip", code="A007A", modifiers=["25"])], [], "modifiers_not_allowed",
                 "lines[0].modifiers", id="modifier-on-ohip"),
    pytest.param({}, [line(code_system="cpt", code="99213", diagnosis_pointers=[1]),
                      line(code_system="cpt", code="90837", diagnosis_pointers=[2])],
                 [{"code_system": "icd10cm", "code": "F41.1"}], "diagnosis_pointer_invalid",
                 "lines[1].diagnosis_pointers", id="pointer-to-no-diagnosis"),
    pytest.param({}, [line(code_system="cpt", code="99213", diagnosis_pointers=[1])], [],
                 "diagnosis_pointer_invalid", "lines[0].diagnosis_pointers", id="pointer-without-diagnoses"),
    pytest.param({}, [line(code_system="cpt", code="99213", diagnosis_pointers=[1, 1])],
                 [{"code_system": "icd10cm", "code": "F41.1"}], "diagnosis_pointer_invalid",
                 "lines[0].diagnosis_pointers", id="pointer-twice"),
    pytest.param({}, [line(code_system="cpt", code="99213", cpt_code="99213")], [], "cpt_code_and_code",
                 "lines[0].cpt_code", id="cpt-code-and-code"),
    pytest.param({}, [line(code="99213")], [], "service_code_incomplete", "lines[0].code_system",
                 id="code-without-system"),
    pytest.param({}, [line(code_system="cpt", code="99213")], [{"code_system": "icd10cm", "code": "F4.1"}],
                 "diagnosis_code_invalid", "diagnoses[0].code", id="icd10-malformed"),
    pytest.param({}, [line(code_system="cpt", code="99213")], [{"code_system": "ohip_dx", "code": "30"}],
                 "diagnosis_code_invalid", "diagnoses[0].code", id="ohip-dx-two-digits"),
    pytest.param({}, [line(code_system="cpt", code="99213")],
                 [{"code_system": "icd10cm", "code": "F41.1"}, {"code_system": "icd10cm", "code": "F411"}],
                 "duplicate_diagnosis", "diagnoses[1]", id="same-diagnosis-twice"),
    pytest.param({"diagnosis_code_systems": ["ohip_dx"]}, [line(code_system="cpt", code="99213")],
                 [{"code_system": "icd10cm", "code": "F41.1"}], "code_system_not_used", "diagnoses[0].code_system",
                 id="diagnosis-system-not-used"),
])
async def test_a_refused_line_or_diagnosis_is_named_with_its_rule(client, session, office, systems, lines, diagnoses,
                                                                code, field):
    if systems:
        await choose(client, office, **systems)
    before = await count(session, "bill")
    body = assert_problem(await new_bill(client, office, lines, diagnoses=diagnoses), 422, code)
    assert body["field"] == field
    if code in ("service_code_invalid", "diagnosis_code_invalid"):
        assert body["rule"] in body["detail"]
    assert await count(session, "bill") == before  # nothing half-written
    # The same rules for an encounter's lines.
    response = await client.post("/v1/encounters", headers=office.h(office.admin), json={
        "patient_id": office.patient_id, "provider_id": str(office.provider.id), "service_date": "2026-11-20",
        "lines": lines, "diagnoses": diagnoses})
    assert assert_problem(response, 422, code)["field"] == field


@pytest.mark.parametrize("fields", [
    pytest.param({"modifiers": ["25", "59", "GT", "95", "LT"]}, id="five-modifiers"),
    pytest.param({"modifiers": ["2"]}, id="one-character-modifier"),
    pytest.param({"diagnosis_pointers": [1, 2, 3, 4, 5]}, id="five-pointers"),
    pytest.param({"diagnosis_pointers": [0]}, id="pointer-zero"),
    pytest.param({"code": "99 213"}, id="code-with-a-space"),
])
async def test_the_schema_bounds(client, office, fields):
    assert_problem(await new_bill(client, office, [line(code_system="cpt", code="99213") | fields]), 422,
                   "validation_error")


async def test_thirteen_diagnoses_are_too_many(client, office):
    diagnoses = [{"code_system": "ohip_dx", "code": str(300 + n)} for n in range(13)]
    assert_problem(await new_bill(client, office, [line(code_system="cpt", code="99213")], diagnoses=diagnoses),
                   422, "validation_error")
    ok = await new_bill(client, office, [line(code_system="cpt", code="99213", diagnosis_pointers=[12])],
                        diagnoses=diagnoses[:12])
    assert ok.status_code == 201, ok.text


async def test_a_company_that_never_chose_keeps_the_five_characters(client, office):
    response = await client.get(f"/v1/companies/{office.company.id}", headers=office.h(office.admin))
    assert (response.json()["service_code_systems"], response.json()["diagnosis_code_systems"]) == (None, None)
    response = await new_bill(client, office, [line(cpt_code="ABCDE"), line(cpt_code="A0427"),
                                               line(code_system="legacy", code="ZZ999"), line(cpt_code="0042T")])
    assert response.status_code == 201, response.text
    assert [(x["code_system"], x["code"], x["cpt_code"]) for x in response.json()["lines"]] == [
        ("legacy", "ABCDE", "ABCDE"), ("hcpcs", "A0427", "A0427"), ("legacy", "ZZ999", "ZZ999"),
        ("cpt", "0042T", "0042T")]


async def test_the_company_setting(client, office):
    path = f"/v1/companies/{office.company.id}"
    assert (await choose(client, office, service_code_systems=["msp", "cpt", "msp"]))["service_code_systems"] == [
        "cpt", "msp"]
    assert_problem(await client.patch(path, headers=office.h(office.admin), json={"service_code_systems": None}),
                   422, "field_required")
    for wrong in (["legacy"], ["icd10cm"], []):
        assert_problem(await client.patch(path, headers=office.h(office.admin),
                                          json={"service_code_systems": wrong}), 422, "validation_error")
    assert_problem(await client.patch(path, headers=office.h(office.provider),
                                      json={"service_code_systems": ["ohip"]}), 403)
    assert (await client.get(path, headers=office.h(office.admin))).json()["service_code_systems"] == ["cpt", "msp"]
    # Chosen: an MSP fee item is taken, an OHIP code is not.
    assert (await new_bill(client, office, [line(code_system="msp", code="00100")])).status_code == 201
    assert_problem(await new_bill(client, office, [line(code_system="ohip", code="A007")]), 422,
                   "code_system_not_used")


async def test_a_bill_from_an_encounter_takes_its_lines_and_diagnoses(client, office):
    response = await client.post("/v1/encounters", headers=office.h(office.admin), json={
        "patient_id": office.patient_id, "provider_id": str(office.provider.id), "service_date": "2026-11-18",
        "diagnoses": [{"code_system": "icd10cm", "code": "F41.1"}, {"code_system": "icd10cm", "code": "F32.A"}],
        "lines": [line(code_system="cpt", code="90837", modifiers=["95"], diagnosis_pointers=[2, 1]),
                  line(code_system="ahcip", code="03.03A", diagnosis_pointers=[1])]})
    assert response.status_code == 201, response.text
    encounter = response.json()
    assert encounter["diagnoses"][1] == {"code_system": "icd10cm", "code": "F32.A"}
    assert encounter["lines"][0]["modifiers"] == ["95"] and encounter["lines"][1]["cpt_code"] is None
    read = await client.get(f"/v1/encounters/{encounter['id']}", headers=office.h())
    assert read.json()["lines"] == encounter["lines"] and read.json()["diagnoses"] == encounter["diagnoses"]

    response = await client.post("/v1/bills", headers=office.h(), json={
        "provider_id": str(office.provider.id), "patient_id": office.patient_id, "coverage": "private",
        "encounter_id": encounter["id"]})
    assert response.status_code == 201, response.text
    bill = response.json()
    assert bill["diagnoses"] == encounter["diagnoses"]
    assert [{k: v for k, v in x.items()} for x in bill["lines"]] == encounter["lines"]
    # Other diagnoses sent with the encounter's lines: the pointers must still land.
    response = await client.post("/v1/bills", headers=office.h(), json={
        "provider_id": str(office.provider.id), "patient_id": office.patient_id, "coverage": "private",
        "encounter_id": encounter["id"], "diagnoses": [{"code_system": "icd10cm", "code": "F41.1"}]})
    assert assert_problem(response, 422, "diagnosis_pointer_invalid")["field"] == "lines[0].diagnosis_pointers"


async def test_editing_a_draft_keeps_the_pointers_valid(client, office):
    diagnoses = [{"code_system": "icd10cm", "code": "F41.1"}, {"code_system": "icd10cm", "code": "Z00.00"}]
    bill = (await new_bill(client, office, [line(code_system="cpt", code="90837", diagnosis_pointers=[2])],
                           diagnoses=diagnoses)).json()
    path = f"/v1/bills/{bill['id']}"
    fewer = {"diagnoses": diagnoses[:1]}
    assert assert_problem(await client.patch(path, headers=office.h(), json=fewer), 422,
                          "diagnosis_pointer_invalid")["field"] == "lines[0].diagnosis_pointers"
    assert_problem(await client.patch(path, headers=office.h(), json={"diagnoses": None}), 422, "field_required")
    response = await client.patch(path, headers=office.h(), json={
        **fewer, "lines": [line(code_system="cpt", code="90837", diagnosis_pointers=[1], units=2)]})
    assert response.status_code == 200, response.text
    assert response.json()["diagnoses"] == diagnoses[:1] and response.json()["total_cents"] == 10000
    assert_problem(await client.patch(path, headers=office.h(), json={
        "lines": [line(code_system="cpt", code="90837", diagnosis_pointers=[2])]}), 422, "diagnosis_pointer_invalid")
