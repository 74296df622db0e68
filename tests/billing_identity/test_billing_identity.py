"""Provider and practice billing identity over HTTP: who may read and change each (every class of caller of the
world), the rules of every number (a table each), normalisation, nothing written on refusal, audit, and what
`identity_for_documents` hands the document renderer."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from billing_api.billing_identity.numbers import PLACES_OF_SERVICE
from billing_api.billing_identity.service import (
    DocumentIdentity,
    PracticeIdentity,
    ProviderIdentity,
    identity_for_documents,
)
from billing_api.models import AuditEvent
from tests.authz.world import CALLERS, build_world
from tests.helpers import ADMIN, assert_problem, count

# Who knows the owner as a provider: everyone of the clinic (and its parent's administrator), support.
KNOWS_OWNER = {"owner", "delegate_user", "group_delegate", "removed_member", "expired_delegate", "other_provider",
               "admin_one", "admin_both", "company_admin", "parent_admin", "role_biller", "staff", "support"}
PROVIDER_EDITORS = {"owner", "company_admin", "parent_admin"}
# Who reaches the clinic: the same people (the delegates are the clinic's own users here).
REACH_CLINIC = KNOWS_OWNER
COMPANY_EDITORS = {"company_admin", "parent_admin"}

PROVIDER_BODY = {"npi": "1234567893", "province": "ON", "provincial_billing_number": "123456", "credentials": "MD",
                 "taxonomy_code": "207Q00000X"}
COMPANY_BODY = {"legal_name": "Clinic Medicine PC", "tax_id": "12-3456789", "business_number": "123456782 RT0001",
                "address_lines": ["100 Main St, Suite 4", "Toronto ON M5V 2T6"], "phone": "+1 (416) 555-0100",
                "place_of_service": "11"}


@pytest.fixture
async def world(factory):
    return await build_world(factory, segregated=True)


def provider_path(world, who: str = "owner") -> str:
    return f"/v1/providers/{world.users[who].id}/billing-identity"


def company_path(world) -> str:
    return f"/v1/companies/{world.clinic.id}/billing-identity"


async def identity_rows(session) -> int:
    return (await count(session, "provider_billing_identity")) + (await count(session, "company_billing_identity"))


# Who may read and change


@pytest.mark.parametrize("caller", CALLERS)
async def test_who_reads_and_changes_a_providers_identity(client, factory, session, world, caller):
    headers = factory.headers(world.users[caller])
    await client.put(provider_path(world), json=PROVIDER_BODY, headers=factory.headers(world.users["owner"]))
    read = await client.get(provider_path(world), headers=headers)
    saved = await client.put(provider_path(world), json={**PROVIDER_BODY, "credentials": "MD, CCFP"},
                             headers=headers)
    if caller == "deactivated_delegate":
        assert_problem(read, 401)
        assert_problem(saved, 401)
    elif caller not in KNOWS_OWNER:
        assert_problem(read, 404, "provider_not_found")
        assert_problem(saved, 404, "provider_not_found")
    else:
        assert read.status_code == 200, read.text
        assert read.json()["npi"] == "1234567893" and read.json()["provider_id"] == str(world.users["owner"].id)
        if caller in PROVIDER_EDITORS:
            assert saved.status_code == 200, saved.text
            assert saved.json()["credentials"] == "MD, CCFP"
            assert saved.json()["updated_by"] == str(world.users[caller].id)
        else:
            code = "support_read_only" if caller == "support" else "billing_identity_edit_forbidden"
            assert_problem(saved, 403, code)
    after = (await client.get(provider_path(world), headers=factory.headers(world.users["owner"]))).json()
    assert after["credentials"] == ("MD, CCFP" if caller in PROVIDER_EDITORS else "MD")


@pytest.mark.parametrize("caller", CALLERS)
async def test_who_reads_and_changes_a_practices_identity(client, factory, session, world, caller):
    headers = factory.headers(world.users[caller])
    read = await client.get(company_path(world), headers=headers)
    saved = await client.put(company_path(world), json=COMPANY_BODY, headers=headers)
    if caller == "deactivated_delegate":
        assert_problem(read, 401)
        assert_problem(saved, 401)
    elif caller not in REACH_CLINIC:
        assert_problem(read, 404, "company_not_found")
        assert_problem(saved, 404, "company_not_found")
    else:
        assert read.status_code == 200, read.text
        assert read.json()["company_id"] == str(world.clinic.id) and read.json()["updated_at"] is None
        if caller in COMPANY_EDITORS:
            assert saved.status_code == 200, saved.text
            assert saved.json()["tax_id"] == "12-3456789"
        else:
            assert_problem(saved, 403, "support_read_only" if caller == "support" else "company_admin_required")
    assert await count(session, "company_billing_identity") == (1 if caller in COMPANY_EDITORS else 0)


async def test_a_user_who_is_no_provider_has_no_billing_identity(client, factory, world):
    admin = factory.headers(world.users["company_admin"])
    for user_id in (world.users["staff"].id, uuid.uuid4()):
        path = f"/v1/providers/{user_id}/billing-identity"
        assert_problem(await client.get(path, headers=admin), 404, "provider_not_found")
        assert_problem(await client.put(path, json=PROVIDER_BODY, headers=admin), 404, "provider_not_found")


async def test_an_unknown_company_is_404(client, factory, world):
    admin = factory.headers(world.users["company_admin"])
    path = f"/v1/companies/{uuid.uuid4()}/billing-identity"
    assert_problem(await client.get(path, headers=admin), 404, "company_not_found")
    assert_problem(await client.put(path, json=COMPANY_BODY, headers=admin), 404, "company_not_found")


# Reading, replacing, auditing


async def test_never_saved_identities_read_as_empty(client, factory, world):
    owner = factory.headers(world.users["owner"])
    provider = (await client.get(provider_path(world), headers=owner)).json()
    assert provider == {"provider_id": str(world.users["owner"].id), "npi": None, "province": None,
                        "provincial_billing_number": None, "credentials": None, "taxonomy_code": None,
                        "updated_at": None, "updated_by": None}
    company = (await client.get(company_path(world), headers=owner)).json()
    assert company == {"company_id": str(world.clinic.id), "legal_name": None, "tax_id": None,
                       "business_number": None, "address_lines": [], "phone": None, "place_of_service": None,
                       "place_of_service_name": None, "updated_at": None, "updated_by": None}


async def test_a_put_replaces_the_whole_identity_and_is_audited(client, factory, session, world):
    owner = factory.headers(world.users["owner"])
    first = await client.put(provider_path(world), json=PROVIDER_BODY, headers=owner)
    assert first.status_code == 200, first.text
    assert {k: first.json()[k] for k in PROVIDER_BODY} == PROVIDER_BODY
    second = await client.put(provider_path(world), json={"npi": "1245319599", "credentials": "MD"}, headers=owner)
    assert second.status_code == 200, second.text
    body = second.json()
    # Left out: cleared.
    assert (body["npi"], body["province"], body["provincial_billing_number"], body["taxonomy_code"]) == (
        "1245319599", None, None, None)
    assert await count(session, "provider_billing_identity") == 1
    events = (await session.execute(select(AuditEvent).where(
        AuditEvent.action == "provider_billing_identity.updated").order_by(AuditEvent.created_at))).scalars().all()
    assert len(events) == 2
    assert all(e.target_id == world.users["owner"].id and e.actor_id == world.users["owner"].id for e in events)
    assert all(e.company_id == world.clinic.id for e in events)
    assert events[1].details == {"changes": {"npi": "1245319599", "province": None, "provincial_billing_number": None,
                                             "taxonomy_code": None}}

    admin = factory.headers(world.users["company_admin"])
    saved = await client.put(company_path(world), json=COMPANY_BODY, headers=admin)
    assert saved.status_code == 200, saved.text
    assert saved.json()["business_number"] == "123456782RT0001"
    assert saved.json()["place_of_service_name"] == "Office"
    assert saved.json()["address_lines"] == COMPANY_BODY["address_lines"]
    cleared = await client.put(company_path(world), json={"legal_name": "Clinic Medicine PC"}, headers=admin)
    assert cleared.json()["tax_id"] is None and cleared.json()["address_lines"] == []
    company_events = (await session.execute(select(AuditEvent).where(
        AuditEvent.action == "company_billing_identity.updated"))).scalars().all()
    assert len(company_events) == 2 and all(e.target_id == world.clinic.id for e in company_events)


# The rules, a table each. Each row: the value sent, and the stored value (valid) or the 422 code (invalid).

NPIS = [
    ("1234567893", "1234567893"),   # the standard's own example
    ("1245319599", "1245319599"),
    ("1003000126", "1003000126"),
    ("2000000002", "2000000002"),   # an organisation's NPI starts with 2, same check
    ("1234567890", "npi_check_digit"),
    ("1234567839", "npi_check_digit"),  # two digits swapped
    ("123456789", "npi_format"),
    ("12345678930", "npi_format"),
    ("123456789X", "npi_format"),
    ("123-456-7893", "npi_format"),
    ("１２３４５６７８９３", "npi_format"),  # full-width digits are not ASCII digits
]

BILLING_NUMBERS = [
    ("ON", "123456", "123456"),
    ("ON", "012345", "012345"),
    ("ON", "12345", "provincial_billing_number_format"),
    ("ON", "1234567", "provincial_billing_number_format"),
    ("ON", "A12345", "provincial_billing_number_format"),
    ("AB", "123456789", "123456789"),
    ("AB", "1234-56789", "123456789"),
    ("AB", "12345678", "provincial_billing_number_format"),
    ("AB", "12345-6789", "provincial_billing_number_format"),
    ("BC", "12345", "12345"),
    ("BC", "x1234", "X1234"),
    ("BC", "1234", "provincial_billing_number_format"),
    ("BC", "123456", "provincial_billing_number_format"),
    ("BC", "12 45", "provincial_billing_number_format"),
    (None, "123456", "province_required"),
    ("ON", None, "provincial_billing_number_required"),
]

TAX_IDS = [
    ("12-3456789", "12-3456789"),
    ("123456789", "12-3456789"),
    ("01-0000001", "01-0000001"),
    ("99-9999999", "99-9999999"),
    ("07-1234567", "tax_id_prefix"),
    ("00-1234567", "tax_id_prefix"),
    ("89-1234567", "tax_id_prefix"),
    ("12-345678", "tax_id_format"),
    ("123-456789", "tax_id_format"),
    ("12 3456789", "tax_id_format"),
    ("AB-1234567", "tax_id_format"),
]

BUSINESS_NUMBERS = [
    ("123456782", "123456782"),
    ("123026635", "123026635"),
    ("12302 6635", "123026635"),
    ("123456782 RT0001", "123456782RT0001"),
    ("123456782rp0002", "123456782RP0002"),
    ("123456782-RC-0001", "123456782RC0001"),
    ("123456783", "business_number_check_digit"),
    ("123456782 RX0001", "business_number_program"),
    ("123456782 RT0000", "business_number_program"),
    ("12345678", "business_number_format"),
    ("1234567822", "business_number_format"),
    ("123456782 RT001", "business_number_format"),
    ("123456782 T0001", "business_number_format"),
]

PLACES = [
    ("11", "11"),
    ("02", "02"),
    ("10", "10"),
    ("99", "99"),
    ("00", "place_of_service_unknown"),
    ("28", "place_of_service_unknown"),
    ("59", "place_of_service_unknown"),
    ("1", "place_of_service_format"),
    ("011", "place_of_service_format"),
    ("1a", "place_of_service_format"),
]

PHONES = [
    ("+1 (416) 555-0100", "+1 (416) 555-0100"),
    ("416.555.0100", "416.555.0100"),
    ("555-0100", "phone_format"),
    ("+1 416 555 0100 ext 2", "phone_format"),
]

TAXONOMIES = [("207Q00000X", "207Q00000X"), ("1041c0700x", "1041C0700X"), ("207Q00000", "taxonomy_code_format"),
              ("207Q00000Y", "taxonomy_code_format"), ("20AQ00000X", "taxonomy_code_format")]


def _is_code(expected: str) -> bool:
    return expected.islower() and not expected[0].isdigit()


async def _check(client, session, path, headers, body, field, expected):
    before = await identity_rows(session)
    audits = await count(session, "audit_event")
    response = await client.put(path, json=body, headers=headers)
    if _is_code(expected):
        problem = assert_problem(response, 422, expected)
        assert problem["field"] == field
        assert await identity_rows(session) == before and await count(session, "audit_event") == audits
    else:
        assert response.status_code == 200, response.text
        assert response.json()[field] == expected


@pytest.mark.parametrize(("value", "expected"), NPIS)
async def test_npi(client, factory, session, world, value, expected):
    await _check(client, session, provider_path(world), factory.headers(world.users["owner"]), {"npi": value},
                 "npi", expected)


@pytest.mark.parametrize(("province", "value", "expected"), BILLING_NUMBERS)
async def test_provincial_billing_number(client, factory, session, world, province, value, expected):
    field = "province" if expected == "province_required" else "provincial_billing_number"
    await _check(client, session, provider_path(world), factory.headers(world.users["owner"]),
                 {"province": province, "provincial_billing_number": value}, field, expected)


@pytest.mark.parametrize(("value", "expected"), TAXONOMIES)
async def test_taxonomy_code(client, factory, session, world, value, expected):
    await _check(client, session, provider_path(world), factory.headers(world.users["owner"]),
                 {"taxonomy_code": value}, "taxonomy_code", expected)


@pytest.mark.parametrize(("value", "expected"), TAX_IDS)
async def test_tax_id(client, factory, session, world, value, expected):
    await _check(client, session, company_path(world), factory.headers(world.users["company_admin"]),
                 {"tax_id": value}, "tax_id", expected)


@pytest.mark.parametrize(("value", "expected"), BUSINESS_NUMBERS)
async def test_business_number(client, factory, session, world, value, expected):
    await _check(client, session, company_path(world), factory.headers(world.users["company_admin"]),
                 {"business_number": value}, "business_number", expected)


@pytest.mark.parametrize(("value", "expected"), PLACES)
async def test_place_of_service(client, factory, session, world, value, expected):
    await _check(client, session, company_path(world), factory.headers(world.users["company_admin"]),
                 {"place_of_service": value}, "place_of_service", expected)


@pytest.mark.parametrize(("value", "expected"), PHONES)
async def test_phone(client, factory, session, world, value, expected):
    await _check(client, session, company_path(world), factory.headers(world.users["company_admin"]),
                 {"phone": value}, "phone", expected)


def test_the_place_of_service_table_holds_two_digit_codes_only():
    assert all(len(code) == 2 and code.isdigit() for code in PLACES_OF_SERVICE)
    assert {"02", "10", "11", "12", "99"} <= PLACES_OF_SERVICE.keys()


@pytest.mark.parametrize("body", [
    {"province": "QC", "provincial_billing_number": "123456"},
    {"credentials": ""},
    {"credentials": "M" * 41},
    {"credentials": "<b>MD</b>"},
    {"npi": "1" * 21},
    {"nickname": "Doc"},
])
async def test_schema_errors_on_the_providers_identity(client, factory, session, world, body):
    response = await client.put(provider_path(world), json=body, headers=factory.headers(world.users["owner"]))
    assert_problem(response, 422, "validation_error")
    assert await identity_rows(session) == 0


@pytest.mark.parametrize("body", [
    {"address_lines": ["1", "2", "3", "4", "5"]},
    {"address_lines": ["   "]},
    {"legal_name": "x" * 201},
    {"place_of_service": 11},
])
async def test_schema_errors_on_the_practices_identity(client, factory, session, world, body):
    response = await client.put(company_path(world), json=body, headers=factory.headers(world.users["company_admin"]))
    assert_problem(response, 422, "validation_error")
    assert await identity_rows(session) == 0


async def test_the_first_broken_rule_refuses_the_whole_save(client, factory, session, world):
    admin = factory.headers(world.users["company_admin"])
    assert (await client.put(company_path(world), json=COMPANY_BODY, headers=admin)).status_code == 200
    response = await client.put(company_path(world), json={**COMPANY_BODY, "legal_name": "Renamed",
                                                            "place_of_service": "28"}, headers=admin)
    assert_problem(response, 422, "place_of_service_unknown")
    assert (await client.get(company_path(world), headers=admin)).json()["legal_name"] == "Clinic Medicine PC"


# What the document renderer gets


async def test_identity_for_documents(client, factory, session, world):
    owner = world.users["owner"]
    empty = await identity_for_documents(session, provider_ids=[owner.id], company_id=world.clinic.id)
    assert empty == DocumentIdentity(providers={owner.id: ProviderIdentity()}, practice=PracticeIdentity())
    assert empty.providers[owner.id].npi is None and empty.practice.address_lines is None

    await client.put(provider_path(world), json=PROVIDER_BODY, headers=factory.headers(owner))
    await client.put(company_path(world), json={**COMPANY_BODY, "place_of_service": "10"},
                     headers=factory.headers(world.users["company_admin"]))
    other_provider = world.users["other_provider"]
    found = await identity_for_documents(session, provider_ids=[owner.id, other_provider.id],
                                         company_id=world.clinic.id)
    assert found.providers[owner.id] == ProviderIdentity(
        npi="1234567893", province="ON", provincial_billing_number="123456", credentials="MD",
        taxonomy_code="207Q00000X")
    assert found.practice == PracticeIdentity(
        legal_name="Clinic Medicine PC", tax_id="12-3456789", business_number="123456782RT0001",
        address_lines=("100 Main St, Suite 4", "Toronto ON M5V 2T6"), phone="+1 (416) 555-0100",
        place_of_service="10", place_of_service_name="Telehealth Provided in Patient's Home")
    # Another provider of the same practice: their own (empty) identity.
    assert found.providers[other_provider.id] == ProviderIdentity()


async def test_a_value_postgresql_cannot_store_is_422_and_nothing_is_saved(client, factory, session, world):
    response = await client.put(company_path(world), json={"legal_name": "Clinic\u0000PC"},
                                headers=factory.headers(world.users["company_admin"]))
    assert_problem(response, 422, "invalid_value")
    assert await identity_rows(session) == 0


async def test_the_demo_identities_pass_the_rules_they_would_be_saved_by(session, settings):
    from billing_api.billing_identity import numbers
    from billing_api.demo import load_demo
    from billing_api.models import CompanyBillingIdentity, ProviderBillingIdentity

    await load_demo(session, settings)
    providers = (await session.execute(select(ProviderBillingIdentity))).scalars().all()
    practices = (await session.execute(select(CompanyBillingIdentity))).scalars().all()
    assert len(providers) == 7 and len(practices) == 5
    for row in providers:
        assert row.npi is None or numbers.npi(row.npi) == row.npi
        assert numbers.provincial_billing_number(row.province, row.provincial_billing_number) == (
            row.province, row.provincial_billing_number)
        assert row.npi or row.provincial_billing_number
    for row in practices:
        assert row.tax_id is None or numbers.tax_id(row.tax_id) == row.tax_id
        assert row.business_number is None or numbers.business_number(row.business_number) == row.business_number
        assert numbers.phone(row.phone) == row.phone
        assert numbers.place_of_service(row.place_of_service) == row.place_of_service


async def test_two_first_saves_at_once_both_land_one_after_the_other(live):
    """Two saves of a never-saved identity at once (real commits): one row, each save audited, one of the
    saves' values kept, and no 409 or 500 from the race to create the row."""
    http, factory = live
    company = await factory.company()
    provider = await factory.user(company, provider=True)
    admin = await factory.user(company, account_type=ADMIN)
    await factory.session.commit()
    path = f"/v1/providers/{provider.id}/billing-identity"
    bodies = [{"npi": "1234567893", "credentials": "MD"}, {"npi": "1245319599", "credentials": "DO"}]
    responses = await asyncio.gather(*(http.put(path, json=body, headers=factory.headers(who))
                                       for body, who in zip(bodies, (provider, admin), strict=True)))
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    final = (await http.get(path, headers=factory.headers(provider))).json()
    assert {k: final[k] for k in ("npi", "credentials")} in bodies
    session = factory.session
    assert await count(session, "provider_billing_identity", "provider_id = :p", p=provider.id) == 1
    assert await count(session, "audit_event", "action = 'provider_billing_identity.updated' AND target_id = :p",
                       p=provider.id) == 2
